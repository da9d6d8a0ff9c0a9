"""Templates: each block inserted into a small chain analyses, keeps one group and unique names,
splices into the chain, round-trips through a project file, and runs in the engine with its merge
computing what it should; shapes it cannot take are refused with the fix; remove_group undoes."""
from __future__ import annotations

import math

import numpy as np
import pytest

from engine.executor import run
from models import project
from models.analysis import analyse
from models.errors import ConfigError
from models.layers import (Add, BatchNorm, Concat, Conv, ConvTranspose, Flatten, GlobalAvgPool,
                           Mul, ReLU, Resize, Sigmoid)
from models.stack import INPUT, InputSpec, Layer, Stack
from models.templates import TEMPLATES, insert_template, remove_group

SPATIAL = {1: (16,), 2: (8, 8), 3: (4, 4, 4)}
C = 8  # channels at the insertion point (the first conv's filters)
ANCHOR = 1  # the ReLU of Conv - ReLU - [here] - Conv - GlobalAvgPool


def _chain(rank: int = 2, spatial: tuple[int, ...] | None = None) -> Stack:
    layers = [Layer("conv1", Conv(rank=rank, out_channels=C)), Layer("relu1", ReLU()),
              Layer("conv2", Conv(rank=rank, out_channels=4)), Layer("gap", GlobalAvgPool())]
    return Stack(InputSpec(3, spatial or SPATIAL[rank])).with_layers(layers)


def _half(sizes: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(math.ceil(w / 2) for w in sizes)


def _expected_shape(template: str, rank: int) -> tuple[int, ...]:
    """(C, *spatial) the block promises on C = 8 channels of SPATIAL[rank]."""
    sizes = SPATIAL[rank]
    return {
        "Residual (identity)": (C, *sizes),
        "Residual (projection)": (2 * C, *_half(sizes)),
        "Gated (GLU)": (C, *sizes),
        # GoogLeNet 3a (64 + 128 + 32 + 32 of 192) scaled by 8/192, rounded: 3 + 5 + 1 + 1.
        "Inception": (10, *sizes),
        "Squeeze-excitation": (C, *sizes),
        "Dense layer": (C + 12, *sizes),  # growth 12 below 64 channels
        "U-Net level": (C, *sizes),
        "FPN merge": (C, *sizes),
    }[template]


CASES = [(t, 2) for t in TEMPLATES] + [(t, 1) for t in TEMPLATES] + \
    [("Residual (identity)", 3), ("Squeeze-excitation", 3), ("U-Net level", 3)]


def test_the_palette_offers_the_eight_blocks():
    assert list(TEMPLATES) == ["Residual (identity)", "Residual (projection)", "Gated (GLU)",
                               "Inception", "Squeeze-excitation", "Dense layer", "U-Net level",
                               "FPN merge"]
    for name, template in TEMPLATES.items():
        assert template.name == name and template.description.endswith(".")


@pytest.mark.parametrize("template, rank", CASES)
def test_block_is_spliced_into_the_chain_in_one_group(template, rank):
    before = _chain(rank)
    stack = insert_template(before, template, ANCHOR)
    report = analyse(stack)
    assert report.ok, report.first_error
    count = len(stack.layers) - len(before.layers)
    block = stack.layers[ANCHOR + 1:ANCHOR + 1 + count]
    names = {layer.name for layer in block}
    # names unique across the network; the old layers keep theirs
    assert len({layer.name for layer in stack.layers}) == len(stack.layers)
    assert [layer.name for layer in stack.layers if layer.name not in names] == \
        [layer.name for layer in before.layers]
    # one group, new, holding exactly the block
    groups = {layer.group for layer in block}
    assert len(groups) == 1 and groups.pop() == f"{TEMPLATES[template].group}1"
    assert all(layer.group == "" for layer in stack.layers if layer.name not in names)
    # the block reads only the anchor and itself, explicitly
    assert all(layer.inputs is not None and set(layer.inputs) <= names | {"relu1"}
               for layer in block)
    assert any("relu1" in layer.inputs for layer in block)
    # the chain after it reads the block's output, still implicitly
    after = stack.index_of("conv2")
    assert stack.layers[after].inputs is None
    assert stack.input_names(after) == (block[-1].name,)
    assert report.layers[after - 1].output_shape == (1, *_expected_shape(template, rank))
    assert stack.output_indices == (len(stack.layers) - 1,)


def _outputs(stack: Stack, rank: int):
    x = np.random.default_rng(rank).standard_normal((2, 3, *SPATIAL[rank])).astype(np.float32)
    result = run(stack, x)
    assert result.error is None
    for layer_report, out in zip(result.report.layers, result.outputs):
        assert out.shape == (2, *layer_report.output_shape[1:]) and np.isfinite(out).all()
    return result, {layer.name: out for layer, out in zip(stack.layers, result.outputs)}


def _merge_and_reads(stack: Stack, kind: type) -> tuple[Layer, list[Layer]]:
    merges = [layer for layer in stack.layers if layer.group and isinstance(layer.spec, kind)]
    assert len(merges) == 1
    merge = merges[0]
    return merge, [stack.layers[stack.index_of(name)] for name in merge.inputs]


@pytest.mark.parametrize("template, rank", CASES)
def test_engine_runs_the_block_and_its_merge_computes_what_it_promises(template, rank, tmp_path):
    stack = insert_template(_chain(rank), template, ANCHOR)
    result, out = _outputs(stack, rank)
    anchor = out["relu1"]
    if template == "Residual (identity)":
        add, (body, shortcut) = _merge_and_reads(stack, Add)
        assert isinstance(body.spec, BatchNorm) and shortcut.name == "relu1"
        np.testing.assert_allclose(out[add.name], out[body.name] + anchor, rtol=1e-6, atol=1e-6)
        relu = stack.layers[stack.index_of(add.name) + 1]
        assert isinstance(relu.spec, ReLU) and relu.inputs == (add.name,)
        np.testing.assert_array_equal(out[relu.name], np.maximum(out[add.name], 0))
    elif template == "Residual (projection)":
        add, (body, shortcut) = _merge_and_reads(stack, Add)
        assert isinstance(body.spec, BatchNorm) and isinstance(shortcut.spec, BatchNorm)
        projection = stack.layers[stack.index_of(shortcut.inputs[0])]
        assert projection.inputs == ("relu1",) and projection.spec.kernel_size == (1,) * rank
        assert projection.spec.stride == (2,) * rank
        np.testing.assert_allclose(out[add.name], out[body.name] + out[shortcut.name],
                                   rtol=1e-6, atol=1e-6)
    elif template == "Gated (GLU)":
        mul, (value, gate) = _merge_and_reads(stack, Mul)
        assert isinstance(gate.spec, Sigmoid)
        # one convolution of the anchor to 2C channels: the value is its first half, the gate's
        # logits its second
        conv = stack.layers[stack.index_of(value.inputs[0])]
        assert isinstance(conv.spec, Conv) and conv.inputs == ("relu1",)
        assert conv.spec.out_channels == 2 * C and conv.spec.kernel_size == (3,) * rank
        both = out[conv.name]
        np.testing.assert_array_equal(out[value.name], both[:, :C])
        np.testing.assert_array_equal(out[gate.inputs[0]], both[:, C:])
        logits = both[:, C:]
        np.testing.assert_allclose(out[gate.name], 1 / (1 + np.exp(-logits)), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(out[mul.name], out[value.name] * out[gate.name],
                                   rtol=1e-6, atol=1e-6)
    elif template == "Squeeze-excitation":
        mul, (source, gate) = _merge_and_reads(stack, Mul)
        assert source.name == "relu1" and isinstance(gate.spec, Sigmoid)
        assert out[gate.name].shape == (2, C) + (1,) * rank
        np.testing.assert_allclose(out[mul.name], anchor * out[gate.name], rtol=1e-6, atol=1e-6)
    elif template in ("Inception", "Dense layer", "U-Net level"):
        cat, reads = _merge_and_reads(stack, Concat)
        np.testing.assert_array_equal(out[cat.name],
                                      np.concatenate([out[r.name] for r in reads], axis=1))
        if template == "Inception":
            assert [out[r.name].shape[1] for r in reads] == [3, 5, 1, 1]
        elif template == "Dense layer":
            assert reads[0].name == "relu1" and out[reads[1].name].shape[1] == 12
        else:  # the skip at full size, then the upsampled path from half the size
            assert isinstance(reads[1].spec, ConvTranspose)
            assert out[reads[0].name].shape == out[reads[1].name].shape == anchor.shape
    else:  # FPN merge: lateral 1x1 of the anchor + the coarse level upsampled by 2
        add, (lateral, up) = _merge_and_reads(stack, Add)
        assert lateral.inputs == ("relu1",) and isinstance(up.spec, Resize)
        coarse = out[up.inputs[0]]
        np.testing.assert_array_equal(out[up.name], coarse.repeat(2, axis=2).repeat(2, axis=3)
                                      if rank == 2 else coarse.repeat(2, axis=2))
        assert coarse.shape[2:] == _half(SPATIAL[rank])
        np.testing.assert_allclose(out[add.name], out[lateral.name] + out[up.name],
                                   rtol=1e-6, atol=1e-6)

    path = tmp_path / "t.convscope"
    project.save(result.stack, path)
    again = project.load(path)
    assert project.to_json(again) == project.to_json(result.stack)
    assert [(a.name, a.spec, a.inputs, a.group) for a in again.layers] == \
        [(a.name, a.spec, a.inputs, a.group) for a in result.stack.layers]


def test_inception_and_dense_widths_follow_googlenet_and_densenet():
    stack = Stack(InputSpec(192, (8, 8)))
    report = analyse(insert_template(stack, "Inception", None))
    assert report.output_shape == (1, 256, 8, 8)  # GoogLeNet 3a: 64 + 128 + 32 + 32
    report = analyse(insert_template(Stack(InputSpec(64, (8, 8))), "Dense layer", None))
    assert report.output_shape == (1, 64 + 32, 8, 8)  # DenseNet-121's growth 32
    report = analyse(insert_template(Stack(InputSpec(3, (8, 8))), "Squeeze-excitation", None))
    assert report.ok  # 3 // 4 channels would be 0: the bottleneck keeps at least 1
    assert report.layers[1].output_shape == (1, 1, 1, 1)


@pytest.mark.parametrize("template", list(TEMPLATES))
def test_a_flat_vector_is_refused_with_the_fix(template):
    stack = Stack(InputSpec(3, (8, 8))).with_layers(
        [Layer("conv1", Conv(out_channels=4)), Layer("gap", GlobalAvgPool()),
         Layer("flatten1", Flatten())])
    with pytest.raises(ConfigError, match="flat vector of 4 features; insert it before the "
                                          "Flatten") as err:
        insert_template(stack, template, 2)
    assert template in str(err.value) and "'flatten1'" in str(err.value)


@pytest.mark.parametrize("template", ["U-Net level", "FPN merge"])
def test_odd_sizes_are_refused_where_the_block_halves_and_doubles_back(template):
    stack = _chain(2, (9, 8))
    with pytest.raises(ConfigError, match=r"odd height 9; make the size even with padding or a "
                                          r"resize before"):
        insert_template(stack, template, ANCHOR)
    assert analyse(insert_template(_chain(2, (8, 8)), template, ANCHOR)).ok
    with pytest.raises(ConfigError, match="odd length 15"):
        insert_template(_chain(1, (15,)), template, ANCHOR)


def test_odd_sizes_suit_the_projection_whose_shortcut_matches_the_body():
    report = analyse(insert_template(_chain(2, (9, 7)), "Residual (projection)", ANCHOR))
    assert report.ok and report.layers[-3].output_shape == (1, 16, 5, 4)


def test_a_block_layer_that_cannot_work_is_refused_by_name():
    # 2 x 4096 channels of 3x3 kernels: more weights than one layer may hold
    with pytest.raises(ConfigError, match="Residual \\(projection\\) after the input: its "
                                          "Conv2D 'conv1' says: its weights would hold"):
        insert_template(Stack(InputSpec(4096, (2, 2))), "Residual (projection)", None)


def test_an_anchor_without_a_shape_unknown_template_and_bad_index_are_refused():
    stack = _chain().with_spec(0, Conv(out_channels=C, kernel_size=11, padding="valid"))
    with pytest.raises(ConfigError, match="output shape is unknown"):
        insert_template(stack, "Residual (identity)", ANCHOR)
    with pytest.raises(ConfigError, match="no template 'ResNeXt'.*Residual \\(identity\\)"):
        insert_template(_chain(), "ResNeXt", ANCHOR)
    with pytest.raises(ConfigError, match="has 4 layers"):
        insert_template(_chain(), "Inception", 4)


def test_at_the_start_the_block_reads_the_input_and_the_first_layer_reads_the_block():
    before = _chain()
    stack = insert_template(before, "Squeeze-excitation", None)
    assert analyse(stack).ok
    count = len(stack.layers) - len(before.layers)
    assert any(INPUT in layer.inputs for layer in stack.layers[:count])
    first = stack.index_of("conv1")
    assert first == count and stack.layers[first].inputs is None
    assert stack.input_names(first) == (stack.layers[count - 1].name,)


def test_explicit_readers_and_outputs_of_the_anchor_read_the_block_instead():
    layers = [Layer("stem", Conv(out_channels=C)),
              Layer("a", Conv(out_channels=4), inputs=("stem",)),
              Layer("b", Conv(out_channels=4, kernel_size=1), inputs=("stem",)),
              Layer("cat", Concat(), inputs=("a", "b", "stem"))]
    before = Stack(InputSpec(3, (8, 8))).with_layers(layers, outputs=("cat", "stem"))
    stack = insert_template(before, "Residual (identity)", 0)
    out = stack.layers[stack.index_of("a") - 1].name
    assert stack.layers[stack.index_of("a") - 1].group == "res1"
    assert stack.layers[stack.index_of("a")].inputs == (out,)
    assert stack.layers[stack.index_of("b")].inputs == (out,)
    assert stack.layers[stack.index_of("cat")].inputs == ("a", "b", out)
    assert stack.outputs == ("cat", out)
    report = analyse(stack)
    assert report.ok and report.layers[stack.index_of("cat")].output_shape == (1, 16, 8, 8)
    assert _same_graph(remove_group(stack, "res1"), before)


def _same_graph(a: Stack, b: Stack) -> bool:
    return [(x.name, x.spec, x.inputs, x.group) for x in a.layers] == \
        [(x.name, x.spec, x.inputs, x.group) for x in b.layers] and a.outputs == b.outputs


def test_blocks_nest_inside_the_group_they_are_inserted_into_and_number_on():
    layers = [Layer("conv1", Conv(out_channels=C), group="layer1/0"),
              Layer("relu1", ReLU(), group="layer1/0"),
              Layer("conv2", Conv(out_channels=C), group="layer1/1"),
              Layer("relu2", ReLU())]
    stack = Stack(InputSpec(3, (8, 8))).with_layers(layers)
    inside = insert_template(stack, "Residual (identity)", 0)
    assert {layer.group for layer in inside.layers[1:-3]} == {"layer1/0/res1"}
    edge = insert_template(inside, "Residual (identity)", inside.index_of("relu1"))
    new = [layer for layer in edge.layers if layer.name not in {x.name for x in inside.layers}]
    assert {layer.group for layer in new} == {"layer1/res2"}  # between layer1/0 and layer1/1
    end = insert_template(edge, "Gated (GLU)", len(edge.layers) - 1)
    assert end.layers[-1].group == "glu1" and analyse(end).ok
    named = insert_template(stack, "Gated (GLU)", 1, group="gate")
    assert {layer.group for layer in named.layers[2:-2]} == {"gate"}
    with pytest.raises(ConfigError, match="'layer1/0' is in use") as err:
        insert_template(stack, "Gated (GLU)", 1, group="layer1/0")
    assert err.value.field == "group"


@pytest.mark.parametrize("template", list(TEMPLATES))
def test_remove_group_undoes_an_insert(template):
    before = _chain()
    stack = insert_template(before, template, ANCHOR)
    group = stack.layers[ANCHOR + 1].group
    again = remove_group(stack, group)
    assert _same_graph(again, before) and again.is_chain
    start = insert_template(before, template, None)
    assert _same_graph(remove_group(start, start.layers[0].group), before)


def test_remove_group_refuses_an_unknown_group_or_one_reading_several_nodes():
    stack = insert_template(_chain(), "Inception", ANCHOR)
    with pytest.raises(ConfigError, match="no layer is in the group 'res1'.*inception1"):
        remove_group(stack, "res1")
    layers = [Layer("a", Conv(out_channels=4)), Layer("b", Conv(out_channels=4), inputs=(INPUT,)),
              Layer("sum", Add(), inputs=("a", "b"), group="m"), Layer("relu", ReLU())]
    two = Stack(InputSpec(3, (8, 8))).with_layers(layers)
    with pytest.raises(ConfigError, match="reads 'a' and 'b'"):
        remove_group(two, "m")


def test_options_set_the_gated_block_and_unknown_ones_are_refused():
    stack = insert_template(_chain(1), "Gated (GLU)", ANCHOR, out_channels=C, kernel_size=5,
                            dilation=2, bias=False, residual=True)
    block = [layer for layer in stack.layers if layer.group == "glu1"]
    assert block[0].spec == Conv(rank=1, out_channels=2 * C, kernel_size=5, dilation=2, bias=False)
    assert isinstance(block[-1].spec, Add) and block[-1].inputs == (block[-2].name, "relu1")
    assert analyse(stack).ok
    with pytest.raises(ConfigError, match="Gated \\(GLU\\) has no option 'gate'; its options are "
                                          "out_channels, kernel_size"):
        insert_template(_chain(1), "Gated (GLU)", ANCHOR, gate="tanh")
    with pytest.raises(ConfigError, match="Inception has no option 'residual'; it takes none"):
        insert_template(_chain(1), "Inception", ANCHOR, residual=True)
    with pytest.raises(ConfigError, match="cannot insert Gated \\(GLU\\) after 'relu1': "
                                          "kernel_size must be"):
        insert_template(_chain(1), "Gated (GLU)", ANCHOR, kernel_size="wide")
