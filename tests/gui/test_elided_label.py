"""gui.elided_label: a title narrower than its text ends in "…" and keeps the whole text."""
from __future__ import annotations

from gui.elided_label import ElidedLabel

TITLE = "conv1 · Conv3D · 16×16×56×56"


def test_a_narrow_label_elides_and_a_wide_one_shows_everything(qtbot):
    label = ElidedLabel(TITLE)
    qtbot.addWidget(label)
    label.resize(60, 20)
    label.show()
    drawn = super(ElidedLabel, label).text()  # what QLabel paints
    assert drawn.endswith("…") and TITLE.startswith(drawn[:-1]) and len(drawn) < len(TITLE)
    assert label.text() == TITLE and label.toolTip() == TITLE
    label.resize(label.fontMetrics().horizontalAdvance(TITLE) + 20, 20)
    assert super(ElidedLabel, label).text() == TITLE and label.toolTip() == ""
    label.setText("relu1 · ReLU")
    assert super(ElidedLabel, label).text() == "relu1 · ReLU"
