"""Project files made from presets, written to a temporary folder, for the command-line tests."""
from __future__ import annotations

from pathlib import Path

import pytest

from models import presets
from models.project import save


@pytest.fixture
def lenet_file(tmp_path: Path) -> Path:
    path = tmp_path / "lenet.convscope"
    save(presets.lenet5(), path)
    return path


@pytest.fixture
def demo_file(tmp_path: Path) -> Path:
    path = tmp_path / "demo.convscope"
    save(presets.demo(), path)
    return path
