"""A large model imports with its weights read once: the peak memory of an import stays below
1.5 times the file's size (inline weights, and weights in an external file), measured in a fresh
process on a VGG-11-shaped model of about 130 MiB written for the test."""
from __future__ import annotations

import pytest
from big_models import measure_import, write_vgg11

MiB = 2**20


@pytest.mark.parametrize("external", [False, True], ids=["inline", "external"])
def test_import_holds_the_weights_about_once(tmp_path, external):
    path = tmp_path / "vgg11.onnx"
    size = write_vgg11(path, width=0.5, external=external)
    assert size > 120 * MiB
    measured = measure_import(path)
    assert measured["ok"] and measured["layers"] == 25
    assert measured["weights"] > 0.95 * size
    grew = measured["peak"] - measured["before"]
    assert grew < 1.5 * size, f"{grew / MiB:.0f} MiB for a {size / MiB:.0f} MiB file"
