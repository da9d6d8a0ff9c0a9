"""The bad files, written once per test session (the huge image alone takes a second)."""
from __future__ import annotations

from pathlib import Path

import pytest

from models import project
from models.presets import lenet5
from tests.reliability.bad_files import BadFile, write_bad_files


@pytest.fixture(scope="session")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> list[BadFile]:
    return write_bad_files(tmp_path_factory.mktemp("bad"))


@pytest.fixture
def lenet_file(tmp_path: Path) -> Path:
    path = tmp_path / "lenet.convscope"
    project.save(lenet5(), path)
    return path
