"""Dark and light looks: the Fusion style with a matching palette, and pyqtgraph to match."""
from __future__ import annotations

import weakref
from dataclasses import dataclass

import shiboken6
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QLabel, QStyleFactory

THEMES = ("dark", "light")


@dataclass(frozen=True)
class Colors:
    """The few colours the custom-painted widgets (cards, banners) use beyond the palette."""
    card: str
    card_border: str
    accent: str
    error: str
    error_fill: str
    waiting: str
    muted: str


DARK = Colors(card="#2b2f36", card_border="#3d434d", accent="#4c9be8", error="#ff6b6b",
              error_fill="#4a2a2e", waiting="#7d838c", muted="#a4abb5")
LIGHT = Colors(card="#ffffff", card_border="#c9ced6", accent="#2f74c0", error="#c62828",
               error_fill="#fde8e8", waiting="#9aa0a8", muted="#5f6670")

_current = "dark"
_muted_labels: weakref.WeakSet[QLabel] = weakref.WeakSet()


def colors() -> Colors:
    """The colours of the theme now applied."""
    return DARK if _current == "dark" else LIGHT


def current_theme() -> str:
    return _current


def mute(label: QLabel) -> QLabel:
    """Draw `label` in the theme's secondary text colour, now and after a theme switch."""
    label.setStyleSheet(f"color: {colors().muted};")
    _muted_labels.add(label)
    return label


def _palette(name: str) -> QPalette:
    if name == "light":
        palette = QStyleFactory.create("Fusion").standardPalette()
        palette.setColor(QPalette.ColorRole.Highlight, QColor(LIGHT.accent))
        return palette
    palette = QPalette()
    roles = {
        QPalette.ColorRole.Window: "#1f2227", QPalette.ColorRole.WindowText: "#e6e8eb",
        QPalette.ColorRole.Base: "#181a1f", QPalette.ColorRole.AlternateBase: "#23262c",
        QPalette.ColorRole.ToolTipBase: "#2b2f36", QPalette.ColorRole.ToolTipText: "#e6e8eb",
        QPalette.ColorRole.PlaceholderText: "#7d838c", QPalette.ColorRole.Text: "#e6e8eb",
        QPalette.ColorRole.Button: "#2b2f36", QPalette.ColorRole.ButtonText: "#e6e8eb",
        QPalette.ColorRole.BrightText: "#ff6b6b", QPalette.ColorRole.Highlight: DARK.accent,
        QPalette.ColorRole.HighlightedText: "#ffffff", QPalette.ColorRole.Link: DARK.accent,
        QPalette.ColorRole.Light: "#3d434d", QPalette.ColorRole.Midlight: "#343941",
        QPalette.ColorRole.Mid: "#2b2f36", QPalette.ColorRole.Dark: "#15171a",
        QPalette.ColorRole.Shadow: "#0d0e10",
    }
    for role, color in roles.items():
        palette.setColor(role, QColor(color))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText,
                 QPalette.ColorRole.WindowText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor("#6b717a"))
    return palette


def apply_theme(name: str) -> None:
    """Apply `name` ("dark" or "light") to the running QApplication and to pyqtgraph."""
    global _current
    if name not in THEMES:
        raise ValueError(f"unknown theme {name!r}; use one of {', '.join(THEMES)}")
    _current = name
    app = QApplication.instance()
    app.setStyle(QStyleFactory.create("Fusion"))
    app.setPalette(_palette(name))
    for label in list(_muted_labels):
        if shiboken6.isValid(label):
            label.setStyleSheet(f"color: {colors().muted};")
    # pyqtgraph reads these when a plot is created; the feature-map views will follow the theme.
    import pyqtgraph
    palette = app.palette()
    pyqtgraph.setConfigOptions(background=palette.color(QPalette.ColorRole.Base),
                               foreground=palette.color(QPalette.ColorRole.Text))
