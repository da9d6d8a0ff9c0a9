"""Edge edits: insert splices, a branch and a merge build a residual that computes x + f(x),
reconnecting and deleting keep the graph valid or refuse naming what would break, and the layers
an edit does not rewire stay the same objects (so the engine reuses their outputs)."""
from __future__ import annotations

import numpy as np
import pytest

from engine.executor import run
from models.analysis import analyse
from models.errors import ConfigError
from models.graph_edits import branch, delete, insert_after, merge, reconnect
from models.layers import Add, Concat, Conv, GlobalAvgPool, ReLU
from models.stack import INPUT, InputSpec, Layer, Stack


def _chain() -> Stack:
    layers = [Layer("conv1", Conv(rank=2, out_channels=4)), Layer("relu1", ReLU()),
              Layer("conv2", Conv(rank=2, out_channels=4, padding="same")),
              Layer("gap", GlobalAvgPool())]
    return Stack(InputSpec(3, (8, 8))).with_layers(layers)


def _reads(stack: Stack) -> dict[str, tuple[str, ...]]:
    return {layer.name: stack.input_names(i) for i, layer in enumerate(stack.layers)}


def test_insert_after_in_a_chain_is_inserting_at_the_next_index():
    stack = _chain()
    spliced = insert_after(stack, 1, Layer("relu9", ReLU()))
    assert _reads(spliced) == _reads(stack.inserted(2, ReLU(), "relu9"))
    assert spliced.is_chain
    assert spliced.layers[0] is stack.layers[0] and spliced.layers[3] is stack.layers[2]


def test_insert_after_a_node_read_by_two_splices_both_readers():
    stack, _ = branch(_chain(), 1, ReLU())  # relu1 feeds conv2 and the branch
    spliced = insert_after(stack, 1, Layer("bn", ReLU()))
    reads = _reads(spliced)
    assert reads["bn"] == ("relu1",)
    assert [name for name, r in reads.items() if "relu1" in r] == ["bn"]


def test_branch_then_merge_builds_a_residual_that_adds_the_branch_point():
    stack = _chain()
    branched, at = branch(stack, 1, ReLU())  # relu1 -> relu2, beside conv2
    assert at == 2 and _reads(branched)[branched.layers[at].name] == ("relu1",)
    assert set(branched.output_indices) == {2, 4}  # the open branch is an output until merged
    last = branched.index_of("conv2")
    merged, m = merge(branched, [last, at], Add())
    reads = _reads(merged)
    assert reads[merged.layers[m].name] == ("conv2", branched.layers[at].name)
    assert reads["gap"] == (merged.layers[m].name,)
    assert merged.output_indices == (len(merged.layers) - 1,)
    assert all(r.ok for r in analyse(merged).layers)
    x = np.random.default_rng(0).standard_normal((1, 3, 8, 8)).astype(np.float32)
    out = run(merged, x).outputs
    relu1 = out[merged.index_of("relu1")]
    expected = out[merged.index_of("conv2")] + np.maximum(relu1, 0)
    np.testing.assert_allclose(out[m], expected, rtol=1e-6)


def test_merge_refuses_one_node_and_too_many_for_a_binary_merge():
    from models.layers import Sub
    stack = _chain()
    with pytest.raises(ConfigError, match="two or more"):
        merge(stack, [1], Add())
    with pytest.raises(ConfigError, match="at most 2"):
        merge(stack, [0, 1, 2], Sub())


def test_concat_of_three_nodes_reads_them_in_the_given_order():
    stack, _ = branch(_chain(), 0, ReLU())
    stack, _ = branch(stack, 0, ReLU())
    merged, m = merge(stack, [0, 1, 2], Concat())
    assert merged.input_names(m) == tuple(stack.layers[i].name for i in (0, 1, 2))
    assert analyse(merged).layers[m].output_shape[1] == 12


def test_reconnect_moves_one_input_and_refuses_later_or_unknown_nodes():
    stack = _chain()
    moved = reconnect(stack, 2, 0, "conv1")
    assert moved.input_names(2) == ("conv1",)
    assert moved.layers[3] is stack.layers[3]  # gap still reads conv2 as the next layer
    same = reconnect(stack, 0, 0, INPUT)
    assert all(a is b for a, b in zip(same.layers, stack.layers, strict=True))
    with pytest.raises(ConfigError, match="comes after it"):
        reconnect(stack, 1, 0, "gap")
    with pytest.raises(ConfigError, match="no input 2"):
        reconnect(stack, 1, 1, "conv1")
    with pytest.raises(ConfigError, match="no node"):
        reconnect(stack, 1, 0, "nope")


def test_delete_reconnects_readers_around_a_single_input_node():
    stack, _ = branch(_chain(), 1, ReLU())
    stack, m = merge(stack, [stack.index_of("conv2"), 2], Add())
    without = delete(stack, stack.index_of("relu1"))  # read by conv2 and the branch
    reads = _reads(without)
    assert reads["conv2"] == ("conv1",) and reads[stack.layers[2].name] == ("conv1",)
    assert all(r.ok for r in analyse(without).layers)


def test_deleting_a_merge_that_others_read_names_them_and_changes_nothing():
    stack, _ = branch(_chain(), 1, ReLU())
    stack, m = merge(stack, [stack.index_of("conv2"), 2], Add())
    with pytest.raises(ConfigError, match=r"would disconnect 'gap'.*reconnect it first"):
        delete(stack, m)
    # Once nothing reads it, the merge goes, and its inputs become open ends again.
    last = delete(stack, len(stack.layers) - 1)
    assert delete(last, m).output_indices == (2, 3)


def test_deleting_the_first_layer_makes_its_readers_read_the_input():
    stack = delete(_chain(), 0)
    assert stack.input_names(0) == (INPUT,) and stack.is_chain
