"""The network as a graph: edges, validation, per-node arithmetic through branches, waiting on an
invalid node, project files with inputs, groups and outputs."""
from __future__ import annotations

import numpy as np
import pytest

from models import project
from models.analysis import analyse
from models.errors import ConfigError
from models.layers import Add, Concat, Conv, GlobalAvgPool, MaxPool, Mul, ReLU, Sigmoid
from models.stack import INPUT, InputSpec, Layer, Stack


def _inception_like() -> Stack:
    layers = [Layer("stem", Conv(out_channels=8)),
              Layer("a", Conv(out_channels=4, kernel_size=1), inputs=("stem",), group="mix"),
              Layer("b", Conv(out_channels=4, kernel_size=5), inputs=("stem",), group="mix"),
              Layer("c", MaxPool(kernel_size=3, stride=1, padding="same"), inputs=("stem",),
                    group="mix/pool"),
              Layer("cat", Concat(), inputs=("a", "b", "c"), group="mix"),
              Layer("relu", ReLU())]
    return Stack(InputSpec(3, (20, 20))).with_layers(layers)


def test_chain_is_the_graph_whose_layers_read_the_previous_one():
    stack = Stack(InputSpec(3, (8, 8))).appended(Conv()).appended(ReLU()).appended(MaxPool())
    assert stack.is_chain
    assert stack.sources == ((-1,), (0,), (1,))
    assert stack.output_indices == (2,)
    assert analyse(stack).outputs == (2,)


def test_branches_merge_with_shapes_parameters_and_union_receptive_field():
    stack = _inception_like()
    report = analyse(stack)
    assert report.ok and not stack.is_chain
    cat = report.layers[4]
    assert cat.sources == (1, 2, 3)
    assert cat.output_shape == (1, 16, 20, 20)
    assert cat.params == 0 and report.total_params == sum(r.params for r in report.layers)
    # stem 3x3 then the widest branch (5x5): 3 + 4 = 7; the 1x1 and 3x3 pool branches are inside.
    assert cat.receptive_field == (7, 7)
    assert report.layers[1].receptive_field == (3, 3)


def test_a_node_reads_only_earlier_nodes():
    stack = _inception_like()
    layers = list(stack.layers)
    layers[1] = layers[1].replace(inputs=("cat",))
    with pytest.raises(ConfigError, match="comes after it") as err:
        stack.with_layers(layers)
    assert err.value.field == "inputs"
    layers[1] = layers[1].replace(inputs=("nowhere",))
    with pytest.raises(ConfigError, match="does not exist"):
        stack.with_layers(layers)


def test_removing_a_node_another_reads_says_who_reads_it():
    stack = _inception_like()
    with pytest.raises(ConfigError, match="'a', 'b', 'c' read 'stem'"):
        stack.removed(0)


def test_renaming_a_node_renames_the_edges_to_it():
    stack = _inception_like()
    renamed = stack.replaced(1, stack.layers[1].replace(name="branch1x1"))
    assert renamed.layers[4].inputs == ("branch1x1", "b", "c")
    assert analyse(renamed).ok


def test_an_invalid_branch_makes_only_its_downstream_wait():
    stack = _inception_like()
    bad = stack.with_spec(2, Conv(out_channels=4, kernel_size=5, padding="valid", stride=1,
                                  dilation=9))
    report = analyse(bad)
    assert report.layers[2].error is not None and report.layers[2].error.layer_index == 2
    assert report.layers[1].ok and report.layers[3].ok
    assert report.layers[4].waiting_on == 2 and report.layers[5].waiting_on == 2
    assert report.layers[5].status == "waiting on layer 3"


def test_a_merge_with_mismatched_branches_names_the_fix():
    layers = [Layer("a", Conv(out_channels=4)), Layer("b", Conv(out_channels=4, stride=2),
                                                      inputs=(INPUT,)),
              Layer("sum", Add(), inputs=("a", "b"))]
    report = analyse(Stack(InputSpec(3, (8, 8))).with_layers(layers))
    error = report.layers[2].error
    assert error is not None and error.field == "inputs"
    assert "cannot broadcast" in error.reason and "8 vs 4" in error.reason


def test_arity_is_checked_per_kind():
    layers = [Layer("a", Conv(out_channels=4)), Layer("sum", Add(), inputs=("a",))]
    error = analyse(Stack(InputSpec(3, (8, 8))).with_layers(layers)).layers[1].error
    assert error is not None and "at least 2 operands" in error.reason
    layers = [Layer("a", Conv(out_channels=4)), Layer("r", ReLU(), inputs=("a", INPUT))]
    error = analyse(Stack(InputSpec(3, (8, 8))).with_layers(layers)).layers[1].error
    assert error is not None and "reads 1 input, but 2 are connected" in error.reason


def test_squeeze_excitation_gating_broadcasts_channels_over_pixels():
    layers = [Layer("feat", Conv(out_channels=8)), Layer("pool", GlobalAvgPool()),
              Layer("fc", Conv(out_channels=8, kernel_size=1)), Layer("gate", Sigmoid()),
              Layer("scale", Mul(), inputs=("feat", "gate"))]
    report = analyse(Stack(InputSpec(3, (10, 10))).with_layers(layers))
    assert report.ok and report.layers[4].output_shape == (1, 8, 10, 10)


def test_stored_operand_broadcasts_the_onnx_way_and_never_over_the_batch():
    layers = [Layer("a", Conv(out_channels=4)), Layer("bias", Add(constant_shape=(4, 1, 1)))]
    report = analyse(Stack(InputSpec(3, (8, 8))).with_layers(layers))
    assert report.ok and report.layers[1].info.param_shapes == {"C": (4, 1, 1)}
    layers[1] = Layer("bias", Add(constant_shape=(2, 4, 1, 1)))
    error = analyse(Stack(InputSpec(3, (8, 8))).with_layers(layers)).layers[1].error
    assert error is not None and "repeat the batch" in error.reason


def test_graph_project_round_trips_inputs_groups_and_outputs(tmp_path):
    stack = _inception_like()
    stack = stack.with_layers(stack.layers, outputs=("cat", "relu"))
    path = tmp_path / "g.convscope"
    project.save(stack, path)
    again = project.load(path)
    assert [(a.name, a.spec, a.inputs, a.group) for a in again.layers] == \
        [(a.name, a.spec, a.inputs, a.group) for a in stack.layers]
    assert again.outputs == ("cat", "relu") and again.output_indices == (4, 5)
    text = path.read_text()
    assert text.count('"inputs"') == 4  # the chain step relu -> previous stays implicit


def test_project_with_an_edge_to_a_later_node_is_refused_by_name(tmp_path):
    stack = _inception_like()
    text = project.to_json(stack).replace('"inputs": [\n    "stem"\n   ]', '"inputs": ["cat"]', 1)
    with pytest.raises(ConfigError, match="reads 'cat', which comes after it"):
        project.from_json(text)
