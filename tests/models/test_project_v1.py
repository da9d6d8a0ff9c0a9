"""Projects written by the release before graphs (version 1, kept as fixtures with the sha256 of
every layer's output that release computed) open unchanged, compute the same bytes, and save in
the current format without losing anything. A Residual or Gated layer of such a file opens as a
group named after it (see test_project_blocks); its output is now the group's last node's."""
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


def _old_outputs(name: str, stack, outputs: list[np.ndarray | None]) -> list[np.ndarray | None]:
    """Per layer of the fixture file (its names read from the file's text), the output of the
    node that holds it now: the layer itself, or the last node of the group named after it."""
    old_names = [entry["name"] for entry in json.loads((FIXTURES / f"{name}.convscope")
                                                       .read_text())["layers"]]
    by_name = {layer.name: out for layer, out in zip(stack.layers, outputs)}
    last_in_group = {layer.group: out for layer, out in zip(stack.layers, outputs) if layer.group}
    return [by_name[n] if n in by_name else last_in_group[n] for n in old_names]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_v1_project_computes_the_same_bytes_and_saves_in_the_current_format(name, tmp_path):
    path = FIXTURES / f"{name}.convscope"
    assert json.loads(path.read_text())["version"] == 1
    stack = project.load(path)
    x = np.random.default_rng(7).standard_normal(stack.input.shape).astype(np.float32)
    result = run(stack, x)
    assert result.error is None
    assert _digests(_old_outputs(name, stack, result.outputs)) == EXPECTED[name]

    saved = tmp_path / "again.convscope"
    project.save(stack, saved)
    assert json.loads(saved.read_text())["version"] == project.VERSION == 3
    reopened = project.load(saved)
    assert [(a.name, a.spec, a.inputs, a.group) for a in reopened.layers] == \
        [(a.name, a.spec, a.inputs, a.group) for a in stack.layers]
    assert _digests(_old_outputs(name, reopened, run(reopened, x).outputs)) == EXPECTED[name]
