"""The "im2col" tab: the selected convolution as one GEMM, the clicked output's row of the patch
matrix against its kernel column, entry by entry, and their dot product plus bias next to the
value the feature map shows (engine.explain_im2col builds the numbers)."""
from __future__ import annotations

from html import escape

from PySide6.QtWidgets import QTextBrowser, QVBoxLayout, QWidget

from engine.explain_im2col import Im2colExplanation
from gui.theme import colors

SHOWN_ENTRIES = 18  # longer rows show their first entries and the last few, with the count
SHOWN_TAIL = 3


CELL = "style='padding: 1px 9px'"


def number(value: float) -> str:
    return f"{value + 0.0:.5g}"  # + 0.0 turns -0.0 (a zero weight times a negative) into 0


def im2col_html(title: str, explained: Im2colExplanation, position: tuple[int, ...],
                shown_value: float) -> str:
    """The shapes, the row against the column, and dot + bias = value beside the map's value."""
    theme = colors()
    count = len(explained.entries)
    rows, cols = explained.patch_shape
    groups = (f" per group ({explained.groups} groups; this filter is in group "
              f"{explained.group})" if explained.groups > 1 else "")
    where = ", ".join(map(str, position))
    parts = [
        f"<h3 style='margin:0 0 6px 0'>{escape(title)}</h3>",
        f"<p>Patch matrix <b>{rows:,} × {cols:,}</b> (N · output pixels × C_in/groups · kernel "
        f"taps) times kernel matrix <b>{explained.kernel_shape[0]:,} × "
        f"{explained.kernel_shape[1]:,}</b> (taps × filters){groups}.<br>"
        f"The clicked output (sample 0, pixel ({where})) is row <b>{explained.row:,}</b>; its "
        f"filter is column <b>{explained.column}</b>. {count} entries, "
        f"{explained.padded_count} of them in the padding (zeros).</p>",
        "<table cellspacing='0' cellpadding='1'>"
        f"<tr><th {CELL} align='right'>entry</th><th {CELL} align='left'>input channel</th>"
        f"<th {CELL} align='left'>at</th><th {CELL} align='right'>patch</th>"
        f"<th {CELL} align='right'>kernel</th><th {CELL} align='right'>product</th></tr>"]
    picked = list(range(count))
    if count > SHOWN_ENTRIES:
        picked = picked[:SHOWN_ENTRIES - SHOWN_TAIL] + [-1] + picked[count - SHOWN_TAIL:]
    for i in picked:
        if i < 0:
            parts.append(f"<tr><td></td><td colspan='5' style='color:{theme.muted}'>… "
                         f"{count - SHOWN_ENTRIES + 1} more entries …</td></tr>")
            continue
        entry = explained.entries[i]
        x, w = float(explained.patch_row[i]), float(explained.kernel_column[i])
        style = f" style='color:{theme.muted}'" if entry.in_padding else ""
        at = "(" + ", ".join(map(str, entry.coords)) + ")" + (" padding" if entry.in_padding
                                                             else "")
        parts.append(f"<tr{style}><td {CELL} align='right'>{i}</td>"
                     f"<td {CELL}>{entry.channel}</td><td {CELL}>{at}</td>"
                     f"<td {CELL} align='right'>{number(x)}</td>"
                     f"<td {CELL} align='right'>{number(w)}</td>"
                     f"<td {CELL} align='right'>{number(x * w)}</td></tr>")
    parts.append("</table>")
    agrees = abs(explained.value - shown_value) <= 1e-4 * max(1.0, abs(shown_value))
    mark = (f"<span style='color:{theme.accent}'>✓ the same</span>" if agrees
            else f"<span style='color:{theme.error}'>differs</span>")
    parts.append(
        f"<p style='font-size:115%'>row · column = <b>{number(explained.dot)}</b>, + bias "
        f"<b>{number(explained.bias)}</b> = <b style='color:{theme.accent}'>"
        f"{number(explained.value)}</b><br>"
        f"the feature map shows <b>{number(shown_value)}</b> {mark}</p>")
    return "".join(parts)


class Im2colPanel(QWidget):
    """`show(title, explained, position, shown_value)` renders; `clear(text)` shows a line
    instead. `html` and `shown_value` are what is shown (tests read them)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.text = QTextBrowser()
        self.html = ""
        self.explained: Im2colExplanation | None = None
        self.shown_value: float | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.text)

    def show(self, title: str, explained: Im2colExplanation, position: tuple[int, ...],
             shown_value: float) -> None:
        self.explained, self.shown_value = explained, shown_value
        self._set(im2col_html(title, explained, position, shown_value))

    def clear(self, text: str) -> None:
        self.explained = self.shown_value = None
        self._set(f"<p style='color:{colors().muted}'>{escape(text)}</p>")

    def _set(self, html: str) -> None:
        self.html = html
        self.text.setHtml(html)
