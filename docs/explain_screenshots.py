"""Render the Explain dock's tabs to explain-*.png files, offscreen.

Run from the repository root: `QT_QPA_PLATFORM=offscreen .venv/bin/python docs/explain_screenshots.py`
writes them to build/explain-screenshots/ (ignored by git). The pixels depend on the fonts the
machine has, so the images the README shows are replaced only when asked: `--out docs`.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gui.main_window import MainWindow  # noqa: E402
from gui.theme import apply_theme  # noqa: E402

SIZE = (1100, 560)
DEFAULT_OUT = ROOT / "build" / "explain-screenshots"


def wait_for_result(app: QApplication, window: MainWindow) -> None:
    """Process events until the window's explain dock holds a result for the current stack."""
    while window.explain.result is None or \
            window.explain.result.stack.layers != window.document.stack.layers:
        app.processEvents()


def grab_tab(app: QApplication, window: MainWindow, tab: str, path: Path) -> None:
    explain = window.explain
    explain.setCurrentIndex(next(i for i in range(explain.count()) if explain.tabText(i) == tab))
    for _ in range(5):
        app.processEvents()
    if not explain.grab().save(str(path)):
        raise SystemExit(f"cannot write {path}")
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Render the Explain dock's tabs to PNG files.")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="DIR",
                        help="folder for the images (default: build/explain-screenshots, "
                             "ignored by git; docs replaces the README's images)")
    out: Path = parser.parse_args(argv).out
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise SystemExit(f"cannot create {out}: {err.strerror or err}") from None
    app = QApplication.instance() or QApplication(sys.argv[:1])
    apply_theme("dark")
    with tempfile.TemporaryDirectory() as folder:
        settings = QSettings(str(Path(folder) / "settings.ini"), QSettings.Format.IniFormat)
        window = MainWindow(settings=settings, restore=False)
        window.show()
        window.explain_dock.setFloating(True)
        window.explain_dock.resize(*SIZE)
        # Offscreen, a floating dock is not reported visible: tell the tabs they are seen.
        window.explain_dock.visibilityChanged.disconnect(window.explain.set_shown)
        window.explain.set_shown(True)

        window.new_from_preset("Dilated 1-2-4 context")
        wait_for_result(app, window)
        window.stack_view.select(4)  # the third conv, dilation 4
        window.explain.select_pixel(4, 0, (20, 26))
        grab_tab(app, window, "Receptive field", out / "explain-receptive-field.png")

        window.new_from_preset("Demo: edges to classes")
        wait_for_result(app, window)
        window.stack_view.select(6)  # conv3: 16 -> 32 channels, 3x3 dilated 2, same
        grab_tab(app, window, "Formulas", out / "explain-formulas.png")
        window.stack_view.select(0)  # conv1: hand-made kernels on the photo
        window.explain.select_pixel(0, 0, (0, 70))  # the top row: three taps in the padding
        grab_tab(app, window, "im2col", out / "explain-im2col.png")
        window.explain.cross_correlation.true_convolution.setChecked(True)
        grab_tab(app, window, "Cross-correlation", out / "explain-cross-correlation.png")

        window.new_from_preset("Encoder-decoder")
        wait_for_result(app, window)
        window.stack_view.select(4)  # the first transposed conv: zeros between the inputs
        window.explain.animation.set_frame(5)
        grab_tab(app, window, "Animation", out / "explain-animation.png")
        window.compute.wait()


if __name__ == "__main__":
    main()
