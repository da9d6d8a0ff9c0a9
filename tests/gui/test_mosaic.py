"""gui.mosaic: tiles sit where the grid says, hold the engine's values, and map back on hover."""
from __future__ import annotations

import numpy as np
import pytest

from engine.executor import run
from gui.mosaic import (GAP_VALUE, THUMBNAIL_SIDE, TileGrid, grid_for, heat_map, input_preview,
                        layer_maps, layer_mosaic, layer_stats, pool, thumbnail, tile)
from gui.sample_inputs import load_sample
from models.presets import demo


@pytest.fixture(scope="module")
def conv1_output() -> np.ndarray:
    """conv1 of the demo model on the built-in sample: (8, 128, 128), from the engine."""
    stack = demo()
    return run(stack, load_sample(stack.input)).outputs[0][0]


def stretched(values: np.ndarray) -> np.ndarray:
    low, high = values.min(), values.max()
    return (values - low) / (high - low)


def test_each_channel_sits_at_its_tile_with_its_own_contrast(conv1_output):
    mosaic = tile(conv1_output, shared=False)
    grid = mosaic.grid
    assert (grid.channels, grid.tile_h, grid.tile_w) == conv1_output.shape
    assert mosaic.image.shape == grid.shape
    assert mosaic.image.dtype == np.float32 and mosaic.image.flags.c_contiguous
    covered = np.zeros(grid.shape, bool)
    for k in range(grid.channels):
        y, x = grid.origin(k)
        block = mosaic.image[y:y + grid.tile_h, x:x + grid.tile_w]
        np.testing.assert_allclose(block, stretched(conv1_output[k]), atol=1e-6)
        assert not covered[y:y + grid.tile_h, x:x + grid.tile_w].any()  # tiles never overlap
        covered[y:y + grid.tile_h, x:x + grid.tile_w] = True
    assert (mosaic.image[~covered] == GAP_VALUE).all()  # gaps and empty cells


def test_shared_contrast_uses_one_range_for_the_whole_layer(conv1_output):
    mosaic = tile(conv1_output, shared=True)
    low, high = conv1_output.min(), conv1_output.max()
    for k in range(conv1_output.shape[0]):
        y, x = mosaic.grid.origin(k)
        block = mosaic.image[y:y + 128, x:x + 128]
        np.testing.assert_allclose(block, (conv1_output[k] - low) / (high - low), atol=1e-6)


def test_locate_maps_a_mosaic_pixel_back_to_channel_and_position(conv1_output):
    grid = tile(conv1_output).grid
    rng = np.random.default_rng(1)
    for k, y, x in zip(rng.integers(0, 8, 50), rng.integers(0, 128, 50), rng.integers(0, 128, 50)):
        oy, ox = grid.origin(int(k))
        assert grid.locate(oy + int(y), ox + int(x)) == (k, y, x)
    assert grid.locate(grid.tile_h, 0) is None  # the gap row below the first tile
    assert grid.locate(-1, 0) is None
    assert grid.locate(*grid.shape) is None


def test_grid_fits_the_view_and_prefers_no_holes():
    assert (grid_for(8, 64, 64).rows, grid_for(8, 64, 64).cols) == (3, 3)
    wide = grid_for(8, 64, 64, aspect=2.0)
    assert (wide.rows, wide.cols) == (2, 4)
    tall = grid_for(8, 64, 64, aspect=0.5)
    assert (tall.rows, tall.cols) == (4, 2)
    assert grid_for(1, 5, 7).shape == (5, 7)


def test_signal_heat_map_has_one_row_per_channel():
    rng = np.random.default_rng(2)
    signals = rng.standard_normal((5, 40)).astype(np.float32)
    mosaic = heat_map(signals, shared=False)
    assert mosaic.image.shape == (5, 40)
    for k in range(5):
        np.testing.assert_allclose(mosaic.image[k], stretched(signals[k]), atol=1e-6)
    assert mosaic.grid.locate(3, 17) == (3, 0, 17)


def test_volume_shows_the_slice_at_the_chosen_depth():
    rng = np.random.default_rng(3)
    volume = rng.standard_normal((4, 6, 10, 12)).astype(np.float32)
    mosaic = layer_mosaic(volume, shared=False, depth=4)
    for k in range(4):
        y, x = mosaic.grid.origin(k)
        np.testing.assert_allclose(mosaic.image[y:y + 10, x:x + 12], stretched(volume[k, 4]),
                                   atol=1e-6)
    np.testing.assert_array_equal(layer_maps(volume, depth=99), volume[:, 5])  # clamped


def test_flat_outputs_have_no_mosaic_and_stats_describe_them():
    values = np.array([0.0, -2.0, 3.0, 0.0], np.float32)
    assert layer_mosaic(values) is None
    stats = layer_stats(values)
    assert (stats.minimum, stats.maximum, stats.mean, stats.zeros) == (-2.0, 3.0, 0.25, 0.5)
    assert "zeros 50%" in stats.text()


def test_constant_and_nonfinite_channels_stay_drawable():
    maps = np.zeros((2, 3, 3), np.float32)
    maps[1, 0, 0] = np.nan
    image = tile(maps, shared=False).image
    assert np.isfinite(image).all() and image.max() <= 1 and image.min() >= GAP_VALUE


@pytest.mark.parametrize("shape", [(10,), (3, 40), (4, 8, 8), (2, 5, 6, 7), (32, 1, 1),
                                   (128, 1), (1, 16000), (8, 224, 224), (3, 7, 300)])
def test_every_thumbnail_is_one_square_size_in_unit_range_or_background(shape):
    image = thumbnail(np.random.default_rng(4).standard_normal(shape).astype(np.float32))
    assert image.shape == (THUMBNAIL_SIDE, THUMBNAIL_SIDE)
    drawn = image[image != GAP_VALUE]
    assert drawn.size and drawn.min() >= 0 and drawn.max() <= 1


def test_tile_grid_shape_counts_gaps_between_tiles_only():
    assert TileGrid(5, 4, 6, 2, 3, 1).shape == (9, 20)


def test_pool_averages_whole_blocks_and_leaves_the_rest_out():
    values = np.arange(12 * 300, dtype=np.float32).reshape(12, 300)
    small = pool(values, 3, 3)
    assert small.shape == (4, 100)
    np.testing.assert_allclose(small[1, 2], values[3:6, 6:9].mean())
    assert pool(values, 5, 7).shape == (2, 42)  # 12 // 5 rows, 300 // 7 columns
    np.testing.assert_array_equal(pool(values, 1, 1), values)


def test_a_layer_over_the_budget_is_tiled_as_block_means_and_maps_back_to_the_output():
    rng = np.random.default_rng(6)
    maps = rng.standard_normal((3, 40, 60)).astype(np.float32)
    grid = grid_for(3, 40, 60, budget=1000)
    assert grid.pixels <= 1000 and grid.step[0] == grid.step[1] > 1
    mosaic = tile(maps, shared=False, grid=grid)
    step = grid.step[0]
    for k in range(3):
        y, x = grid.origin(k)
        means = maps[k, :grid.tile_h * step, :grid.tile_w * step].reshape(
            grid.tile_h, step, grid.tile_w, step).mean(axis=(1, 3))
        np.testing.assert_allclose(mosaic.image[y:y + grid.tile_h, x:x + grid.tile_w],
                                   stretched(means), atol=1e-5)
    y, x = grid.origin(2)
    assert grid.locate(y + 2, x + 3) == (2, 2 * step, 3 * step)  # output pixels, not mosaic


def test_a_long_signal_is_averaged_along_positions_only():
    signals = np.random.default_rng(7).standard_normal((4, 1000)).astype(np.float32)
    mosaic = heat_map(signals, shared=False, budget=400)
    assert mosaic.image.shape == (4, 100) and mosaic.grid.step == (1, 10)
    np.testing.assert_allclose(mosaic.image[2], stretched(signals[2].reshape(100, 10).mean(1)),
                               atol=1e-5)
    assert mosaic.grid.locate(2, 7) == (2, 0, 70)


def test_thumbnails_show_each_kind_as_its_own_picture():
    rng = np.random.default_rng(5)
    side = THUMBNAIL_SIDE
    maps = rng.standard_normal((4, 8, 8)).astype(np.float32)  # mean over channels, filling
    image = thumbnail(maps)
    np.testing.assert_allclose(image[::side // 8, ::side // 8], stretched(maps.mean(axis=0)),
                               atol=1e-5)
    wide = thumbnail(rng.standard_normal((2, 10, 40)).astype(np.float32))  # aspect kept
    assert (wide[:30] == GAP_VALUE).all() and (wide[40:60] != GAP_VALUE).all()
    signal = rng.standard_normal((3, 40)).astype(np.float32)  # channel x position, stretched
    strip = thumbnail(signal)
    rows, cols = np.arange(side) * 3 // side, np.arange(side) * 40 // side
    np.testing.assert_allclose(strip, stretched(signal)[np.ix_(rows, cols)], atol=1e-5)
    values = np.array([1.0, 4.0, 2.0, 0.0], np.float32)  # bars from 0, tallest the largest
    bars = thumbnail(values)
    heights = [(bars[:, i * side // 4] != GAP_VALUE).sum() for i in range(4)]
    assert heights[1] == side and heights[0] < heights[2] < heights[1] and heights[3] <= 1
    volume = rng.standard_normal((2, 5, 6, 7)).astype(np.float32)
    np.testing.assert_allclose(thumbnail(volume), thumbnail(volume[:, 2]), atol=1e-6)
    pooled = rng.standard_normal((16, 1, 1)).astype(np.float32)  # after global pooling: bars
    np.testing.assert_array_equal(thumbnail(pooled), thumbnail(pooled[:, 0, 0]))


def test_the_input_preview_shows_a_volume_slice_and_bounds_its_size():
    rng = np.random.default_rng(8)
    volume = rng.standard_normal((3, 6, 10, 12)).astype(np.float32)
    middle = input_preview(volume)
    assert middle.depth == 3
    np.testing.assert_allclose(middle.image, stretched(volume[:, 3].mean(axis=0)), atol=1e-5)
    assert input_preview(volume, depth=5).depth == 5
    photo = rng.random((3, 2000, 3000)).astype(np.float32)
    rgb = input_preview(photo)
    assert rgb.rgb and rgb.image.shape == (666, 1000, 3) and rgb.step == (3, 3)
    signal = input_preview(rng.standard_normal((2, 220_000)).astype(np.float32))
    assert signal.image.shape == (2, 220_000 // 215)
