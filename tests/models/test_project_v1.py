"""Projects written by the release before graphs (version 1, kept as fixtures with the sha256 of
every layer's output that release computed) open unchanged, compute the same bytes, and save in
the current format without losing anything."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from engine.executor import run
from models import project

FIXTURES = Path(__file__).parent / "fixtures" / "v1"
EXPECTED = json.loads((FIXTURES / "outputs.sha256.json").read_text())


def _digests(outputs: list[np.ndarray | None]) -> list[str]:
    return [hashlib.sha256(np.ascontiguousarray(o).tobytes()).hexdigest() for o in outputs]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_v1_project_computes_the_same_bytes_and_saves_as_v2(name, tmp_path):
    path = FIXTURES / f"{name}.convscope"
    assert json.loads(path.read_text())["version"] == 1
    stack = project.load(path)
    x = np.random.default_rng(7).standard_normal(stack.input.shape).astype(np.float32)
    result = run(stack, x)
    assert result.error is None
    assert _digests(result.outputs) == EXPECTED[name]

    saved = tmp_path / "again.convscope"
    project.save(stack, saved)
    assert json.loads(saved.read_text())["version"] == project.VERSION == 2
    reopened = project.load(saved)
    assert [(a.name, a.spec, a.inputs, a.group) for a in reopened.layers] == \
        [(a.name, a.spec, a.inputs, a.group) for a in stack.layers]
    assert _digests(run(reopened, x).outputs) == EXPECTED[name]
