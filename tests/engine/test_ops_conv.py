"""engine.ops.conv against onnx's reference Conv (and onnxruntime)."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.ops import conv, conv_output_size
from tests.engine.onnx_single_op import run_onnxruntime, run_reference

# ``engine.ops.conv`` is the function (re-exported by the package), so
# ``import engine.ops.conv as m`` would give the function; fetch the module.
conv_module = importlib.import_module("engine.ops.conv")

TOL = {"atol": 1e-4, "rtol": 1e-4}


def _reference(x, w, b, **attrs):
    return run_reference("Conv", {"x": x, "w": w, "b": b}, **attrs)


@st.composite
def conv_cases(draw):
    """A valid Conv configuration: arrays plus ONNX attributes."""
    nd = draw(st.integers(1, 3))
    kind = draw(st.sampled_from(["dense", "grouped", "depthwise"]))
    if kind == "depthwise":
        group = draw(st.integers(1, 4))
        c_in, c_out = group, group * draw(st.integers(1, 2))  # depth multiplier
    else:
        group = 1 if kind == "dense" else draw(st.integers(2, 3))
        c_in = group * draw(st.integers(1, 3))
        c_out = group * draw(st.integers(1, 3))
    kernel = draw(st.lists(st.integers(1, 3), min_size=nd, max_size=nd))
    strides = draw(st.lists(st.integers(1, 3), min_size=nd, max_size=nd))
    dilations = draw(st.lists(st.integers(1, 2), min_size=nd, max_size=nd))
    pads = draw(st.lists(st.integers(0, 2), min_size=2 * nd, max_size=2 * nd))
    max_side = {1: 12, 2: 7, 3: 5}[nd]
    size = []
    for i in range(nd):
        # Smallest input giving an output of at least 1 along this axis.
        lo = max(1, dilations[i] * (kernel[i] - 1) + 1 - pads[i] - pads[nd + i])
        size.append(draw(st.integers(lo, max(lo, max_side))))
    n = draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal((n, c_in, *size), dtype=np.float32)
    w = rng.standard_normal((c_out, c_in // group, *kernel), dtype=np.float32)
    b = rng.standard_normal(c_out, dtype=np.float32) if draw(st.booleans()) else None
    attrs = {"strides": strides, "pads": pads, "dilations": dilations, "group": group}
    return x, w, b, attrs


@settings(max_examples=80, deadline=None)
@given(conv_cases())
def test_conv_matches_reference(case):
    x, w, b, attrs = case
    expected = _reference(x, w, b, **attrs)
    got = conv(x, w, b, **attrs)
    assert got.dtype == np.float32
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, **TOL)


@pytest.mark.parametrize(
    "size,kernel,stride,pads,dilation",
    [(7, 3, 1, (1, 1), 1), (7, 3, 2, (0, 2), 1), (9, 2, 3, (2, 0), 2), (1, 1, 1, (0, 0), 1),
     (5, 3, 2, (1, 1), 2)],
)
def test_conv_output_size_matches_reference_shape(size, kernel, stride, pads, dilation):
    x = np.zeros((1, 1, size), np.float32)
    w = np.zeros((1, 1, kernel), np.float32)
    expected = _reference(x, w, None, strides=[stride], pads=list(pads), dilations=[dilation])
    assert conv_output_size(size, kernel, stride, *pads, dilation) == expected.shape[2]


# --------------------------------------------------------------------------
# fast paths


@pytest.mark.parametrize("multiplier", [1, 2])
@pytest.mark.parametrize("stride", [1, 2])
def test_depthwise_2d(multiplier, stride):
    rng = np.random.default_rng(1)
    c = 12
    x = rng.standard_normal((3, c, 15, 11), dtype=np.float32)
    w = rng.standard_normal((c * multiplier, 1, 3, 3), dtype=np.float32)
    b = rng.standard_normal(c * multiplier, dtype=np.float32)
    attrs = {"strides": [stride, stride], "pads": [1, 0, 2, 1], "dilations": [1, 2], "group": c}
    np.testing.assert_allclose(conv(x, w, b, **attrs), _reference(x, w, b, **attrs), **TOL)


def test_depthwise_large_enough_to_split_into_tasks():
    # Several (image, channel-chunk) tasks on the pool, not one serial chunk.
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 32, 64, 64), dtype=np.float32)
    w = rng.standard_normal((32, 1, 3, 3), dtype=np.float32)
    attrs = {"strides": [1, 1], "pads": [1, 1, 1, 1], "dilations": [1, 1], "group": 32}
    expected = run_onnxruntime("Conv", {"x": x, "w": w}, **attrs)
    np.testing.assert_allclose(conv(x, w, None, **attrs), expected, **TOL)


@pytest.mark.parametrize("block_bytes", [1 << 12, 1 << 16], ids=["channel-chunks",
                                                                 "image-chunks"])
def test_depthwise_chunks(monkeypatch, block_bytes):
    # Several chunks: a few channels of one image, or several whole images;
    # chunk shapes differ at the end, so per-shape buffers are reused and new.
    monkeypatch.setattr(conv_module, "_BLOCK_BYTES", block_bytes)
    monkeypatch.setattr(conv_module, "_MIN_PARALLEL_MACS", 1)
    rng = np.random.default_rng(9)
    x = rng.standard_normal((5, 6, 13, 11), dtype=np.float32)
    w = rng.standard_normal((12, 1, 3, 2), dtype=np.float32)
    b = rng.standard_normal(12, dtype=np.float32)
    attrs = {"strides": [2, 1], "pads": [1, 0, 2, 1], "dilations": [1, 2], "group": 6}
    np.testing.assert_allclose(conv(x, w, b, **attrs), _reference(x, w, b, **attrs), **TOL)


@pytest.mark.parametrize("spatial", [(40, 30), (3, 2)], ids=["batched-nchw", "tiny-images"])
@pytest.mark.parametrize("group", [1, 2])
def test_pointwise_1x1(spatial, group):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 6, *spatial), dtype=np.float32)
    w = rng.standard_normal((8, 6 // group, 1, 1), dtype=np.float32)
    b = rng.standard_normal(8, dtype=np.float32)
    attrs = {"strides": [1, 1], "pads": [0, 0, 0, 0], "dilations": [1, 1], "group": group}
    np.testing.assert_allclose(conv(x, w, b, **attrs), _reference(x, w, b, **attrs), **TOL)


def test_repeated_calls_reuse_patch_buffers_correctly():
    # Patch buffers persist per thread and geometry across calls; padding
    # cells must stay zero and a new geometry must get its own buffer.
    rng = np.random.default_rng(10)
    w = rng.standard_normal((5, 4, 3, 3), dtype=np.float32)
    b = rng.standard_normal(5, dtype=np.float32)
    for pads, bias in (([1, 1, 1, 1], b), ([1, 1, 1, 1], None), ([0, 2, 1, 0], b),
                       ([1, 1, 1, 1], b)):
        x = rng.standard_normal((2, 4, 9, 8), dtype=np.float32)
        attrs = {"strides": [1, 1], "pads": pads, "dilations": [1, 1], "group": 1}
        np.testing.assert_allclose(conv(x, w, bias, **attrs), _reference(x, w, bias, **attrs),
                                   **TOL)


def test_1x1_with_stride_and_pads_uses_general_path():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 5, 9, 8), dtype=np.float32)
    w = rng.standard_normal((3, 5, 1, 1), dtype=np.float32)
    attrs = {"strides": [2, 3], "pads": [1, 0, 0, 2], "dilations": [1, 1], "group": 1}
    np.testing.assert_allclose(conv(x, w, None, **attrs), _reference(x, w, None, **attrs),
                               **TOL)


# --------------------------------------------------------------------------
# the blocked general path


@pytest.fixture
def small_blocks(monkeypatch):
    """Make the planner cut even small convolutions into many blocks, and
    record the blocks it plans (``list`` of block lists, one per call)."""
    monkeypatch.setattr(conv_module, "_IM2COL_BLOCK_BYTES", 4096)
    monkeypatch.setattr(conv_module, "_MIN_BLOCK_PIXELS", 1)
    monkeypatch.setattr(conv_module, "_MIN_PARALLEL_MACS", 1)
    monkeypatch.setattr(conv_module, "num_workers", lambda: 2)
    plans = []
    real_plan = conv_module._plan_blocks

    def recording_plan(*args):
        blocks = real_plan(*args)
        plans.append(blocks)
        return blocks

    monkeypatch.setattr(conv_module, "_plan_blocks", recording_plan)
    return plans


def _assert_partition(blocks, n, rows):
    covered = np.zeros((n, rows), int)
    for n0, n1, r0, r1 in blocks:
        covered[n0:n1, r0:r1] += 1
    assert (covered == 1).all()


def test_plan_covers_output_with_partial_last_block(small_blocks):
    blocks = conv_module._plan_blocks(2, 37, 10, 200, 100)
    _assert_partition(blocks, 2, 37)
    assert {r1 - r0 for _, _, r0, r1 in blocks} == {2, 1}


@pytest.mark.parametrize("rows", [37, 36], ids=["partial-last-block", "even-blocks"])
@pytest.mark.parametrize("bias", [False, True])
def test_block_boundaries(small_blocks, bias, rows):
    # Row blocks within each image. With 37 rows the last block is shorter
    # than the others; with 36 it has the same shape, so it reuses a patch
    # buffer that earlier blocks filled, and its padding rows must be re-zeroed.
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 4, rows, 10), dtype=np.float32)
    w = rng.standard_normal((5, 4, 3, 3), dtype=np.float32)
    b = rng.standard_normal(5, dtype=np.float32) if bias else None
    attrs = {"strides": [1, 1], "pads": [1, 1, 1, 1], "dilations": [1, 1], "group": 1}
    got = conv(x, w, b, **attrs)
    (blocks,) = small_blocks
    _assert_partition(blocks, 2, rows)
    heights = [r1 - r0 for _, _, r0, r1 in blocks]
    assert max(heights) > 1
    assert (heights[-1] < max(heights)) == (rows % max(heights) != 0)
    assert got.shape == (2, 5, rows, 10)
    np.testing.assert_allclose(got, _reference(x, w, b, **attrs), **TOL)


def test_one_worker_still_cuts_cache_sized_blocks(small_blocks, monkeypatch):
    # Blocks are for the cache as much as for the threads: one worker must not get one block
    # holding the whole patch matrix.
    monkeypatch.setattr(conv_module, "num_workers", lambda: 1)
    rng = np.random.default_rng(8)
    x = rng.standard_normal((3, 4, 17, 9), dtype=np.float32)
    w = rng.standard_normal((5, 4, 3, 3), dtype=np.float32)
    attrs = {"strides": [1, 1], "pads": [2, 2, 2, 2], "dilations": [2, 2], "group": 1}
    got = conv(x, w, None, **attrs)
    (blocks,) = small_blocks
    _assert_partition(blocks, 3, 17)
    assert len(blocks) > 3
    np.testing.assert_allclose(got, _reference(x, w, None, **attrs), **TOL)


def test_blocks_with_stride_dilation_groups_3d(small_blocks):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 4, 23, 6, 5), dtype=np.float32)
    w = rng.standard_normal((6, 2, 3, 2, 2), dtype=np.float32)
    b = rng.standard_normal(6, dtype=np.float32)
    attrs = {"strides": [2, 1, 2], "pads": [2, 0, 1, 1, 1, 0], "dilations": [2, 2, 1],
             "group": 2}
    got = conv(x, w, b, **attrs)
    (blocks,) = small_blocks
    assert len(blocks) > 2
    np.testing.assert_allclose(got, _reference(x, w, b, **attrs), **TOL)


def test_blocks_of_several_small_images(small_blocks, monkeypatch):
    # Images smaller than a block: blocks hold whole images (n1 - n0 > 1).
    monkeypatch.setattr(conv_module, "_IM2COL_BLOCK_BYTES", 1 << 16)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((16, 3, 5, 4), dtype=np.float32)
    w = rng.standard_normal((4, 3, 2, 3), dtype=np.float32)
    b = rng.standard_normal(4, dtype=np.float32)
    attrs = {"strides": [1, 1], "pads": [0, 1, 1, 1], "dilations": [1, 1], "group": 1}
    got = conv(x, w, b, **attrs)
    (blocks,) = small_blocks
    assert any(n1 - n0 > 1 for n0, n1, _, _ in blocks) and len(blocks) > 1
    np.testing.assert_allclose(got, _reference(x, w, b, **attrs), **TOL)


def test_large_conv_matches_onnxruntime():
    # Big enough for the real planner to use several row blocks per image
    # (dilated, so the Winograd path does not take it).
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 16, 45, 33), dtype=np.float32)
    w = rng.standard_normal((24, 16, 3, 3), dtype=np.float32)
    b = rng.standard_normal(24, dtype=np.float32)
    attrs = {"strides": [1, 1], "pads": [2, 2, 2, 2], "dilations": [2, 2], "group": 1}
    expected = run_onnxruntime("Conv", {"x": x, "w": w, "b": b}, **attrs)
    np.testing.assert_allclose(conv(x, w, b, **attrs), expected, **TOL)


# --------------------------------------------------------------------------
# errors


@pytest.mark.parametrize(
    "x_shape,w_shape,b_shape,attrs",
    [
        ((1, 4, 5, 5), (2, 3, 3, 3), None, {"group": 1}),  # C_in mismatch
        ((1, 4, 5, 5), (3, 2, 3, 3), None, {"group": 2}),  # C_out not divisible
        ((1, 4, 5, 5), (2, 4, 3), None, {"group": 1}),  # kernel rank
        ((1, 4, 5, 5), (2, 4, 3, 3), (3,), {"group": 1}),  # bias length
        ((1, 4, 2, 2), (2, 4, 3, 3), None, {"group": 1}),  # output would be empty
        ((4, 5, 5), (2, 4, 3, 3), None, {"group": 1}),  # input rank
    ],
)
def test_inconsistent_shapes_raise(x_shape, w_shape, b_shape, attrs):
    x = np.zeros(x_shape, np.float32)
    w = np.zeros(w_shape, np.float32)
    b = None if b_shape is None else np.zeros(b_shape, np.float32)
    with pytest.raises(ValueError):
        conv(x, w, b, strides=None, pads=None, dilations=None, **attrs)


def test_attribute_length_mismatch_raises():
    x = np.zeros((1, 1, 5, 5), np.float32)
    w = np.zeros((1, 1, 3, 3), np.float32)
    with pytest.raises(ValueError, match="pads"):
        conv(x, w, strides=[1, 1], pads=[1, 1], dilations=[1, 1])
    with pytest.raises(ValueError, match="kernel_shape"):
        conv(x, w, strides=[1, 1], pads=None, dilations=None, kernel_shape=[2, 2])
