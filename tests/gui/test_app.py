"""run_app's screenshot mode: the laid-out window saved to a PNG, exit status 0.

It runs in a child process: QApplication.exec() marks the application as closing when it
returns, which would stop later tests' widgets from following palette changes.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from PySide6.QtGui import QImage

from models import project
from models.presets import PRESETS

ROOT = Path(__file__).resolve().parents[2]


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    code = ("import sys; from gui.app import run_app; "
            "sys.exit(run_app(path=sys.argv[1] or None, screenshot=sys.argv[2]))")
    # XDG_CONFIG_HOME keeps the app's QSettings out of the person's own configuration.
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path / "config")}
    return subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_screenshot_writes_the_window(tmp_path):
    target = tmp_path / "shot.png"
    result = run(tmp_path, "", str(target))
    assert result.returncode == 0, result.stderr
    image = QImage(str(target))
    assert image.width() >= 1000 and image.height() >= 700
    assert not (tmp_path / "config" / "ConvScope").exists() or "geometry" not in \
        (tmp_path / "config" / "ConvScope" / "ConvScope.conf").read_text()


def test_screenshot_of_a_project(tmp_path):
    path = tmp_path / "lenet.convscope"
    project.save(PRESETS["LeNet-5"].build(), path)
    result = run(tmp_path, str(path), str(tmp_path / "shot.png"))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert QImage(str(tmp_path / "shot.png")).width() >= 1000
