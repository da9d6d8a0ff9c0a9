"""The "Formulas" tab: the selected layer's arithmetic with its numbers substituted, as rich text
in the theme's colours (models.explain_formulas works out the rows)."""
from __future__ import annotations

from html import escape

from PySide6.QtWidgets import QTextBrowser, QVBoxLayout, QWidget

from gui.theme import colors
from models.explain_formulas import LayerFormulas


def value_text(value: int | float | str) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def formulas_html(title: str, formulas: LayerFormulas) -> str:
    """One block per row: the label, the formula in symbols (muted), then the numbers and the
    value (accent); the note last."""
    theme = colors()
    parts = [f"<h3 style='margin:0 0 6px 0'>{escape(title)}</h3>"]
    if formulas.rows:
        parts.append("<table cellspacing='0' cellpadding='3'>")
        for row in formulas.rows:
            parts.append(
                f"<tr><td valign='top' style='padding-right:14px'><b>{escape(row.label)}</b></td>"
                f"<td><span style='color:{theme.muted}'>{escape(row.formula)}</span><br>"
                f"{escape(row.numbers)} = <b style='color:{theme.accent}'>"
                f"{escape(value_text(row.value))}</b>"
                + (f" <span style='color:{theme.muted}'>({escape(row.note)})</span>"
                   if row.note else "") + "</td></tr>")
        parts.append("</table>")
    if formulas.note:
        parts.append(f"<p style='color:{theme.muted}'>{escape(formulas.note)}</p>")
    return "".join(parts)


class FormulaPanel(QWidget):
    """`show(title, formulas)` renders; `clear(text)` shows a line instead. `html` is what is
    shown (tests read it)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.text = QTextBrowser()
        self.text.setOpenLinks(False)
        self.html = ""
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.text)

    def show(self, title: str, formulas: LayerFormulas) -> None:
        self._set(formulas_html(title, formulas))

    def clear(self, text: str) -> None:
        self._set(f"<p style='color:{colors().muted}'>{escape(text)}</p>")

    def _set(self, html: str) -> None:
        self.html = html
        self.text.setHtml(html)
