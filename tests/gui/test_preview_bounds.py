"""Previews are bounded whatever the output's size: no image over PREVIEW_PIXELS, and making any
one preview allocates at most PREVIEW_MEMORY (tracemalloc's peak, the output made before it
starts), for outputs up to 10^7 samples (signals, vectors) and 10^8 pixels (maps, volumes).

The big outputs cost no memory to make: np.broadcast_to of one random row, or np.zeros, whose
pages the system maps on first write only (and previews never write to an output).
"""
from __future__ import annotations

import tracemalloc
from typing import Callable

import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gui.kernel_tiles import filter_stats, histogram, kernel_mosaic, kernel_planes
from gui.layer_previews import PreviewCache
from gui.mosaic import (INPUT_SIDE, PREVIEW_MEMORY, PREVIEW_PIXELS, THUMBNAIL_SIDE, input_preview,
                        pool_mask)
from models.layers import Conv
from models.stack import InputSpec, Stack
from models.weights import materialise
from tests.gui.test_feature_maps import wait_drawn

SAMPLES = 10**7
PIXELS = 10**8
MiB = 1 << 20


def peak_of(make: Callable[[], object]) -> tuple[int, object]:
    """(bytes, result): the most memory make() held at once beyond what was held before."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        made = make()
        return tracemalloc.get_traced_memory()[1] - before, made
    finally:
        tracemalloc.stop()


def big_array(shape: tuple[int, ...], backing: str, seed: int) -> np.ndarray:
    """An output of this shape that costs no memory: one random last-axis row broadcast to it
    (with a NaN and an infinity in it), or zeros."""
    if backing == "zeros":
        return np.zeros(shape, np.float32)
    row = np.random.default_rng(seed).standard_normal(shape[-1]).astype(np.float32)
    row[0], row[-1] = np.nan, np.inf
    return np.broadcast_to(row, shape)


@st.composite
def shapes(draw) -> tuple[int, ...]:
    """A sample's shape: a signal (C, L) up to SAMPLES values, maps (C, H, W) or a volume
    (C, D, H, W) up to PIXELS values, or a vector (F,) up to SAMPLES values."""
    kind = draw(st.sampled_from(["signal", "maps", "volume", "vector"]))
    if kind == "vector":
        return (draw(st.integers(1, SAMPLES)),)
    channels = draw(st.integers(1, 512))
    if kind == "signal":
        return channels, draw(st.integers(1, SAMPLES // channels))
    room = PIXELS // channels
    depth = draw(st.integers(1, 64)) if kind == "volume" else 1
    height = draw(st.integers(1, max(1, min(room // depth, 20000))))
    width = draw(st.integers(1, max(1, room // depth // height)))
    return (channels, depth, height, width) if kind == "volume" else (channels, height, width)


def check_previews(shape: tuple[int, ...], backing: str, seed: int) -> None:
    sample = big_array(shape, backing, seed)
    output = sample[np.newaxis]  # what the engine hands the view: a batch of one
    cache = PreviewCache()

    def every_preview() -> list[np.ndarray]:
        mosaic = cache.mosaic(output, shared=bool(seed % 2), depth=seed, aspect=1.5)
        images = [cache.thumbnail(output), input_preview(sample, depth=seed).image]
        cache.stats(output)
        if sample.ndim == 1 or all(size == 1 for size in sample.shape[1:]):
            images.append(np.asarray(cache.bars(output)[0]))
            cache.classes(output)
        if mosaic is not None:
            images += [mosaic.image, mosaic.indices]
        return images

    peak, images = peak_of(every_preview)
    assert peak <= PREVIEW_MEMORY, f"{shape}: {peak / MiB:.1f} MiB"
    for image in images:  # type: ignore[union-attr]
        assert int(np.prod(image.shape[:2])) <= PREVIEW_PIXELS, shape
    assert images[0].shape == (THUMBNAIL_SIDE, THUMBNAIL_SIDE)  # type: ignore[index]
    assert max(images[1].shape[:2]) <= INPUT_SIDE  # type: ignore[index]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shape=shapes(), backing=st.sampled_from(["zeros", "broadcast"]),
       seed=st.integers(0, 2**16))
@example(shape=(1, 220_000), backing="broadcast", seed=0)  # five seconds of 44.1 kHz audio
@example(shape=(1, SAMPLES), backing="zeros", seed=1)
@example(shape=(SAMPLES,), backing="broadcast", seed=2)
@example(shape=(1, 10_000, 10_000), backing="broadcast", seed=3)
@example(shape=(64, 1250, 1250), backing="zeros", seed=4)
@example(shape=(4, 100, 500, 500), backing="broadcast", seed=5)
@example(shape=(SAMPLES, 1, 1), backing="zeros", seed=6)  # a huge vector after global pooling
def test_every_preview_stays_under_the_memory_cap(shape, backing, seed):
    check_previews(shape, backing, seed)


@settings(max_examples=8, deadline=None)
@given(filters=st.integers(1, 2048), channels=st.integers(1, 2048),
       kernel=st.integers(1, 10**5), summed=st.booleans())
@example(filters=2048, channels=2048, kernel=1, summed=False)  # 4 Mi 1x1 kernels
@example(filters=4, channels=2, kernel=10**7, summed=False)  # Conv1D with kernel 10^7
def test_kernel_previews_stay_under_the_memory_cap(filters, channels, kernel, summed):
    width = max(1, min(kernel, PIXELS // (filters * channels)))
    row = np.random.default_rng(width).standard_normal(width).astype(np.float32)
    weight = np.broadcast_to(row, (filters, channels, width))  # a Conv1D kernel tensor
    planes = kernel_planes(weight)
    peak, mosaic = peak_of(lambda: kernel_mosaic(planes, summed=summed, per_filter=True))
    assert peak <= PREVIEW_MEMORY and mosaic.grid.pixels <= PREVIEW_PIXELS  # type: ignore
    peak, _ = peak_of(lambda: (filter_stats(weight), histogram(weight.reshape(-1)
                                                               if weight.size < 2**20 else
                                                               weight[0, 0])))
    assert peak <= PREVIEW_MEMORY


def test_a_receptive_field_mask_is_pooled_to_the_preview():
    signal = np.zeros((1, 220_000), np.float32)
    preview = input_preview(signal)
    mask = np.zeros(220_000, bool)
    mask[1000:1003] = True
    pooled = pool_mask(mask, preview)
    step = preview.step[0]
    assert pooled.shape == preview.image.shape
    assert pooled[0].nonzero()[0].tolist() == sorted({1000 // step, 1002 // step})


def test_a_long_signal_input_draws_in_bounded_memory_in_the_window(qtbot, window):
    """The issue's case: a 220,000-sample signal once made a 27,500 x 220,000 strip (24 GB)."""
    stack = materialise(Stack(InputSpec(1, (220_000,))).appended(
        Conv(rank=1, out_channels=4, kernel_size=3)))
    view = window.feature_view
    peak, _ = peak_of(lambda: (window.document.apply(stack, "long signal"),
                               wait_drawn(qtbot, window)))
    # The run itself holds the input and the output (0.9 and 3.5 MB) and its scratch.
    assert view.result.input.shape == (1, 1, 220_000) and view.mosaic is not None
    assert peak <= PREVIEW_MEMORY + 32 * MiB, f"{peak / MiB:.1f} MiB"
    assert view.input_item.image.size <= INPUT_SIDE * INPUT_SIDE
    assert view.map_item.image.size <= PREVIEW_PIXELS
    assert view.map_plot.getAxis("bottom").labelText == "position"
    assert view.mosaic.grid.tile_w * view.mosaic.grid.step[1] <= 220_000
