"""Turning one layer's output into something one image item can draw (pure NumPy, no Qt), in
bounded memory whatever the output's size.

A layer's output for one sample is (C, *spatial) or flat (F,):
- (C, H, W)    -> the channels tiled on a near-square grid with a gap between tiles;
- (C, L)       -> a heat map, one row per channel (a grid of one column, no gap);
- (C, D, H, W) -> the tiles of the slice at one depth;
- (F,)         -> values for a bar chart (no mosaic).
Mosaic images are float32, C-contiguous: tiles in [0, 1], gaps and empty grid cells GAP_VALUE
(below every tile value, so a view can give them a background colour with fixed LEVELS); a
mosaic's `indices` are the lookup-table indices those levels give, ready to draw.
The `TileGrid` maps a mosaic pixel back to (channel, y, x) of the output for hover read-outs.

Memory bound: no image made here holds more than PREVIEW_PIXELS pixels (4 Mi; 16 MiB as
float32), and the passes over a whole output read it in views of at most CHUNK elements, so
making any one preview (mosaic and its indices, thumbnail, input preview, stats, bars, top
classes) allocates at most PREVIEW_MEMORY bytes in all, whatever the output's size (checked by
tests/gui/test_preview_bounds.py). An output larger than the budget is averaged over blocks of
`TileGrid.step` pixels first (the rows and columns past the last whole block are left out), and
past about a million channels only the first channels get a tile.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Iterator

import numpy as np

GAP = 1
GAP_VALUE = -1.0
LUT_SIZE = 256
# pyqtgraph maps v to index (v - low) * LUT_SIZE / (high - low), clipped to the table: with
# low = -1/255 a value of 0 lands on index 1 and 1 on the last index; gaps (< 0) clip to index 0.
LEVELS = (-1.0 / (LUT_SIZE - 1), 1.0)

PREVIEW_PIXELS = 1 << 22  # the most pixels of any image made here
CHUNK = 1 << 20  # the most elements of an output one step of a whole-output pass reads
PREVIEW_MEMORY = 48 << 20  # the most one preview allocates: the image, its indices, scratch
INPUT_SIDE = 1024  # the longest side of the input preview (shown about 150 pixels wide)
THUMBNAIL_SIDE = 104  # the side of every strip thumbnail (square, whatever the output's shape)
TOP_CLASSES = 5


@dataclass(frozen=True)
class TileGrid:
    """Where each channel's tile sits: channel k's pixel (y, x) is at mosaic pixel
    (row * (tile_h + gap) + y, col * (tile_w + gap) + x) with row, col = divmod(k, cols).

    step: how many output pixels (down, across) one tile pixel averages (1, 1 unless the
    output is larger than the preview budget); `channels` may be fewer than the output's."""
    channels: int
    tile_h: int
    tile_w: int
    rows: int
    cols: int
    gap: int = GAP
    step: tuple[int, int] = (1, 1)

    @property
    def shape(self) -> tuple[int, int]:
        """The mosaic's (height, width) in pixels."""
        return (self.rows * (self.tile_h + self.gap) - self.gap,
                self.cols * (self.tile_w + self.gap) - self.gap)

    @property
    def pixels(self) -> int:
        height, width = self.shape
        return height * width

    def origin(self, channel: int) -> tuple[int, int]:
        """The mosaic pixel (y, x) of the channel's top-left corner."""
        row, col = divmod(channel, self.cols)
        return row * (self.tile_h + self.gap), col * (self.tile_w + self.gap)

    def locate(self, y: int, x: int) -> tuple[int, int, int] | None:
        """(channel, y, x) in the layer's output for a mosaic pixel (the first output pixel of
        its block when step > 1), or None on a gap or outside."""
        if y < 0 or x < 0:
            return None
        row, ty = divmod(y, self.tile_h + self.gap)
        col, tx = divmod(x, self.tile_w + self.gap)
        channel = row * self.cols + col
        if ty >= self.tile_h or tx >= self.tile_w or col >= self.cols or channel >= self.channels:
            return None
        return channel, ty * self.step[0], tx * self.step[1]


@dataclass(frozen=True)
class Mosaic:
    """A float32 (height, width) image, tiles in [0, 1] and gaps GAP_VALUE, and its grid."""
    image: np.ndarray
    grid: TileGrid

    @cached_property
    def indices(self) -> np.ndarray:
        """lut_indices(image), made on first use."""
        return lut_indices(self.image)


def lut_indices(image: np.ndarray) -> np.ndarray:
    """The uint8 lookup-table indices pyqtgraph's ImageItem computes from a float image under
    LEVELS and a LUT_SIZE-entry table, each time it is handed a new one: (v - low) * LUT_SIZE /
    (high - low) in float32, clipped to the table and truncated. Handed these instead (with
    levels (0, LUT_SIZE - 1)), it draws the same pixels without the pass: for a 64-channel
    224x224 layer that pass and its NaN check took 6-9 ms of the UI thread. Made a band of
    rows at a time, so the float scratch stays at CHUNK pixels."""
    low, high = LEVELS
    indices = np.empty(image.shape, np.uint8)
    rows = max(1, CHUNK // max(1, image.shape[-1]))
    for top in range(0, image.shape[0], rows):
        work = np.subtract(image[top:top + rows], low, dtype=np.float32)
        work *= LUT_SIZE / (high - low)
        np.clip(work, 0, LUT_SIZE - 1, out=work)
        indices[top:top + rows] = work
    return indices


@dataclass(frozen=True)
class LayerStats:
    """Summary of one layer's output: min, max, mean and the share of exact zeros (0..1)."""
    minimum: float
    maximum: float
    mean: float
    zeros: float

    def text(self) -> str:
        return (f"min {self.minimum:.4g} · max {self.maximum:.4g} · mean {self.mean:.4g} · "
                f"zeros {self.zeros:.0%}")


# ---- bounded passes over an output -------------------------------------------------------------

def chunks(array: np.ndarray, size: int = CHUNK) -> Iterator[np.ndarray]:
    """Views of `array` (never copies) that together cover it, each of at most `size` elements
    (or one row of its last axis where that is longer than size, cut along that axis)."""
    if array.size <= size or array.ndim == 0:
        yield array
    elif array.ndim == 1:
        for start in range(0, array.shape[0], size):
            yield array[start:start + size]
    elif array[0].size <= size:
        rows = size // array[0].size
        for start in range(0, array.shape[0], rows):
            yield array[start:start + rows]
    else:
        for sub in array:
            yield from chunks(sub, size)


def pool(image: np.ndarray, step_y: int, step_x: int,
         out: np.ndarray | None = None) -> np.ndarray:
    """The float32 means of image (H, W) over step_y x step_x blocks, (H // step_y, W // step_x),
    written to `out` when given; the rows and columns past the last whole block are left out.
    Reads image through views: allocates only the result."""
    height, width = image.shape[0] // step_y, image.shape[1] // step_x
    if step_y == step_x == 1:
        if out is None:
            return np.array(image, dtype=np.float32)
        np.copyto(out, image, casting="unsafe")
        return out
    blocks = image[:height * step_y, :width * step_x].reshape(height, step_y, width, step_x)
    out = np.add.reduce(blocks, axis=(1, 3), dtype=np.float32, out=out)
    out *= np.float32(1.0 / (step_y * step_x))
    return out


def _fit_step(height: int, width: int, max_side: int) -> tuple[int, int]:
    """The block size (same both ways, at most each side) that brings both sides to max_side
    or below."""
    factor = max(1, -(-max(height, width) // max_side))
    return min(factor, height), min(factor, width)


def _finite_range(image: np.ndarray) -> tuple[float, float]:
    """(min, max) of a preview image (tiles or a whole small image), first setting its
    non-finite values to 0 in place when it has any."""
    low, high = float(image.min()), float(image.max())
    if not (math.isfinite(low) and math.isfinite(high)):
        np.nan_to_num(image, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        low, high = float(image.min()), float(image.max())
    return low, high


def _scale(image: np.ndarray, low: float, high: float) -> None:
    """image mapped from [low, high] to [0, 1] in place; a constant range maps to 0."""
    image -= np.float32(low)
    span = np.float32(high) - np.float32(low)  # as the subtraction above rounds it
    if span > 0:
        image /= span
        np.minimum(image, np.float32(1.0), out=image)
    else:
        image[...] = 0.0


# ---- mosaics -----------------------------------------------------------------------------------

def _best_grid(channels: int, tile_h: int, tile_w: int, gap: int, aspect: float,
               step: tuple[int, int]) -> TileGrid:
    def fit(cols: int) -> tuple[float, int]:
        rows = math.ceil(channels / cols)
        width, height = cols * (tile_w + gap), rows * (tile_h + gap)
        return min(aspect / width, 1.0 / height), -(rows * cols - channels)

    if channels <= 4096:
        candidates = range(1, channels + 1)
    else:  # the best column count is near the balance point: search around it only
        centre = math.sqrt(channels * aspect * (tile_h + gap) / (tile_w + gap))
        low = max(1, int(centre) - 64)
        candidates = range(low, min(channels, low + 129) + 1)
    cols = max(candidates, key=fit)
    return TileGrid(channels, tile_h, tile_w, math.ceil(channels / cols), cols, gap, step)


def grid_for(channels: int, tile_h: int, tile_w: int, gap: int = GAP, aspect: float = 1.0,
             budget: int = PREVIEW_PIXELS) -> TileGrid:
    """The grid that shows the tiles largest in a view `aspect` times as wide as high (1.0:
    near-square); among equally large layouts, the one with the fewest empty cells. Tiles are
    averaged down over square blocks (its `step`) until the mosaic has at most `budget` pixels;
    only when 1-pixel tiles are still too many does it show fewer channels."""
    shown = channels
    factor = max(1, math.isqrt(channels * tile_h * tile_w // budget))
    while True:
        step_y, step_x = min(factor, tile_h), min(factor, tile_w)
        th, tw = tile_h // step_y, tile_w // step_x
        grid = _best_grid(shown, th, tw, gap, aspect, (step_y, step_x))
        if grid.pixels <= budget:
            return grid
        if th == 1 and tw == 1:
            shown = max(1, shown * budget // grid.pixels - grid.cols)
        else:
            factor += max(1, factor // 8)


def tile(maps: np.ndarray, shared: bool = True, grid: TileGrid | None = None,
         aspect: float = 1.0) -> Mosaic:
    """Tile (C, H, W) maps into one mosaic on `grid` (default: grid_for the aspect, 1-pixel gap).

    Each tile is averaged (over the grid's step) straight into its place in the mosaic and
    scaled there to [0, 1], with one range for all tiles (shared) or one per tile: no full-size
    temporary. Non-finite values become 0 so the image stays drawable.
    """
    channels, height, width = maps.shape
    grid = grid or grid_for(channels, height, width, aspect=aspect)
    image = np.full(grid.shape, GAP_VALUE, np.float32)
    ranges = np.empty((grid.channels, 2), np.float32)
    for k in range(grid.channels):
        place = _place(image, grid, k)
        pool(maps[k], *grid.step, out=place)
        ranges[k] = _finite_range(place)
    low, high = float(ranges[:, 0].min()), float(ranges[:, 1].max())
    for k in range(grid.channels):
        if not shared:
            low, high = map(float, ranges[k])
        _scale(_place(image, grid, k), low, high)
    return Mosaic(image, grid)


def _place(image: np.ndarray, grid: TileGrid, channel: int) -> np.ndarray:
    """The view of the mosaic image that holds the channel's tile."""
    y, x = grid.origin(channel)
    return image[y:y + grid.tile_h, x:x + grid.tile_w]


def heat_map(signals: np.ndarray, shared: bool = True, budget: int = PREVIEW_PIXELS) -> Mosaic:
    """(C, L) -> a C x L mosaic, channel k on row k (a one-column grid without gaps), positions
    averaged over blocks when C x L is over budget (and only the first `budget` channels shown
    past that)."""
    channels, length = signals.shape
    shown = min(channels, budget)
    step = min(length, max(1, -(-shown * length // budget)))
    grid = TileGrid(shown, 1, length // step, shown, 1, 0, (1, step))
    image = pool(signals[:shown], 1, step)
    if not np.isfinite(image).all():
        np.nan_to_num(image, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    if shared:
        _scale(image, float(image.min()), float(image.max()))
    else:
        low = image.min(axis=1, keepdims=True)
        span = image.max(axis=1, keepdims=True) - low
        span[span == 0] = np.inf  # a constant row maps to 0
        image -= low
        image /= span
    return Mosaic(image, grid)


def layer_maps(output: np.ndarray, depth: int = 0) -> np.ndarray | None:
    """The (C, H, W) values a mosaic of one sample's output shows: a signal (C, L) as (C, 1, L),
    a volume's slice at `depth` (clamped); None for flat (F,) outputs."""
    if output.ndim == 2:
        return output[:, np.newaxis, :]
    if output.ndim == 3:
        return output
    if output.ndim == 4:
        return output[:, clamp_depth(depth, output.shape[1])]
    return None


def clamp_depth(depth: int, count: int) -> int:
    return min(max(depth, 0), count - 1)


def layer_mosaic(output: np.ndarray, shared: bool = True, depth: int = 0,
                 aspect: float = 1.0) -> Mosaic | None:
    """The mosaic for one sample's output (C, *spatial); None for vectors (flat (F,) outputs, or
    every spatial size 1), which are drawn as bars.

    depth: the slice shown of a 3D output; aspect: the view's width / height (see grid_for).
    """
    if vector_values(output) is not None:
        return None
    if output.ndim == 2:
        return heat_map(output, shared)
    maps = layer_maps(output, depth)
    return None if maps is None else tile(maps, shared, aspect=aspect)


def normalise(maps: np.ndarray, shared: bool) -> np.ndarray:
    """maps (C, ...) scaled to [0, 1]: one range for all channels (shared) or one per channel.

    A constant range maps to 0; non-finite values become 0 so the image stays drawable.
    Allocates a float32 copy of maps: for preview-sized arrays.
    """
    data = np.array(maps, dtype=np.float32)
    if not np.isfinite(data).all():
        np.nan_to_num(data, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    axes = None if shared else tuple(range(1, data.ndim))
    low = data.min(axis=axes, keepdims=True)
    span = data.max(axis=axes, keepdims=True) - low
    span[span == 0] = np.inf
    data -= low
    data /= span
    return data


# ---- vectors: bars and classes -----------------------------------------------------------------

def vector_values(output: np.ndarray) -> np.ndarray | None:
    """The values of an output that is a vector, as a view: a flat (F,) output, or (C, 1, ...)
    with every spatial size 1 (after global pooling); None for maps and signals."""
    if output.ndim == 1:
        return output
    if all(size == 1 for size in output.shape[1:]):
        return output[(slice(None),) + (0,) * (output.ndim - 1)]
    return None


def binned_extremes(values: np.ndarray, bins: int) -> tuple[np.ndarray, int]:
    """(heights, width): values (F,) in at most `bins` bins of `width` consecutive values (the
    last may be shorter), each bin's height its value farthest from 0; float32."""
    count = values.shape[0]
    width = max(1, -(-count // bins))
    heights = np.empty(-(-count // width), np.float32)
    whole = count // width
    rows = max(1, CHUNK // width)
    for start in range(0, whole, rows):
        block = values[start * width:min(whole, start + rows) * width].reshape(-1, width)
        high, low = block.max(axis=1), block.min(axis=1)
        heights[start:start + block.shape[0]] = np.where(-low > high, low, high)
    if whole < heights.shape[0]:
        rest = values[whole * width:]
        high, low = rest.max(), rest.min()
        heights[-1] = low if -low > high else high
    return heights, width


def top_classes(values: np.ndarray, k: int = TOP_CLASSES) -> list[tuple[int, float]]:
    """The k largest values of a class vector (F,) as (index, value), largest first, ties by
    the lower index (as a stable sort of -values); NaN ranks last. Reads it in chunks."""
    indices: list[np.ndarray] = []
    size = CHUNK // 4  # a chunk's negated copy and its argpartition's indices are scratch
    for start in range(0, values.shape[0], size):
        part = np.negative(values[start:start + size], dtype=np.float64)
        np.nan_to_num(part, copy=False, nan=np.inf)
        keep = min(k, part.shape[0])
        best = np.argpartition(part, keep - 1)[:keep] if keep < part.shape[0] else \
            np.arange(part.shape[0])
        indices.append(best + start)
    candidates = np.sort(np.concatenate(indices))
    scores = np.nan_to_num(-np.asarray(values[candidates], np.float64), nan=np.inf)
    order = candidates[np.argsort(scores, kind="stable")][:k]
    return [(int(i), float(values[i])) for i in order]


def bar_image(values: np.ndarray, side: int) -> np.ndarray:
    """A side x side preview of a vector as bars (its values binned to at most side bars, each
    the bin's value farthest from 0), from a zero line; pixels of a bar hold its scaled value
    in [0, 1], the rest GAP_VALUE."""
    image = np.full((side, side), GAP_VALUE, np.float32)
    if values.shape[0] == 0:
        return image
    heights, _width = binned_extremes(values, side)
    heights = np.nan_to_num(heights, nan=0.0, posinf=0.0, neginf=0.0)
    low, high = min(0.0, float(heights.min())), max(0.0, float(heights.max()))
    span = high - low
    if span == 0:
        return image
    shades = (heights - low) / span
    rows = np.round((high - heights) / span * (side - 1)).astype(int)  # row 0: the top
    zero = int(round(high / span * (side - 1)))
    count = heights.shape[0]
    for i in range(count):
        left, right = i * side // count, (i + 1) * side // count
        if right - left >= 3:
            right -= 1  # a gap between wide bars
        top, bottom = min(rows[i], zero), max(rows[i], zero)
        image[top:bottom + 1, left:max(right, left + 1)] = shades[i]
    return image


# ---- thumbnails and the input preview ----------------------------------------------------------

def _mean_image(maps: np.ndarray, max_side: int) -> np.ndarray:
    """The mean over channels of maps (C, H, W), averaged down to at most max_side a side."""
    channels, height, width = maps.shape
    step_y, step_x = _fit_step(height, width, max_side)
    if (step_y, step_x) == (1, 1):  # small maps, maybe very many: sum groups of channels
        total = np.zeros((height, width), np.float32)
        group = max(1, CHUNK // (height * width))
        for start in range(0, channels, group):
            total += np.add.reduce(maps[start:start + group], axis=0, dtype=np.float32)
    else:
        total = pool(maps[0], step_y, step_x)
        scratch = np.empty_like(total)
        for k in range(1, channels):
            total += pool(maps[k], step_y, step_x, out=scratch)
    total *= np.float32(1.0 / channels)
    return total


def _signal_image(signals: np.ndarray, max_side: int) -> np.ndarray:
    """signals (C, L) averaged over blocks of channels and of positions to at most max_side
    rows and columns (each a whole number of channels or positions)."""
    channels, length = signals.shape
    step_c = max(1, -(-channels // max_side))
    step_l = max(1, -(-length // max_side))
    return pool(signals, step_c, step_l)


def _fill(image: np.ndarray, side: int) -> np.ndarray:
    """image scaled (nearest pixel, the aspect kept) so its longer side is `side`, centred on a
    side x side square of GAP_VALUE."""
    height, width = image.shape
    scale = side / max(height, width)
    new_h, new_w = max(1, round(height * scale)), max(1, round(width * scale))
    rows = np.minimum(np.arange(new_h) * height // new_h, height - 1)
    cols = np.minimum(np.arange(new_w) * width // new_w, width - 1)
    square = np.full((side, side), GAP_VALUE, np.float32)
    top, left = (side - new_h) // 2, (side - new_w) // 2
    square[top:top + new_h, left:left + new_w] = image[np.ix_(rows, cols)]
    return square


def _stretch(image: np.ndarray, side: int) -> np.ndarray:
    """image resized (nearest pixel) to exactly side x side."""
    height, width = image.shape
    rows = np.arange(side) * height // side
    cols = np.arange(side) * width // side
    return np.ascontiguousarray(image[np.ix_(rows, cols)])


def thumbnail(output: np.ndarray, side: int = THUMBNAIL_SIDE) -> np.ndarray:
    """A side x side preview of one sample's output, the same size for every kind: a vector
    (flat, or all spatial sizes 1) as bars; a signal (C, L) as its channel x position heat map
    stretched to the square; maps (C, H, W) as their mean over channels (the middle slice of a
    volume), scaled to fill the square with their aspect kept. Values in [0, 1] over one
    range, the background GAP_VALUE."""
    values = vector_values(output)
    if values is not None:
        return bar_image(values, side)
    if output.size == 0:
        return np.full((side, side), GAP_VALUE, np.float32)
    if output.ndim == 2:
        image = _signal_image(output, side)
    else:
        maps = output if output.ndim == 3 else output[:, output.shape[1] // 2]
        image = _mean_image(maps, side)
    _scale(image, *_finite_range(image))
    return _stretch(image, side) if output.ndim == 2 else _fill(image, side)


@dataclass(frozen=True)
class InputPreview:
    """What the view draws of the input: `image` (H, W) or RGB (H, W, 3) in [0, 1]; `step`:
    input pixels per image pixel along each shown spatial axis (for pooling overlays alike);
    `depth`: the slice shown of a volume (None otherwise)."""
    image: np.ndarray
    step: tuple[int, ...]
    depth: int | None = None

    @property
    def rgb(self) -> bool:
        return self.image.ndim == 3


def input_preview(sample: np.ndarray, depth: int | None = None,
                  max_side: int = INPUT_SIDE) -> InputPreview:
    """The preview of one input sample (C, *spatial) or (F,), at most max_side a side: a
    3-channel image in its colours; other images as their channel mean; a signal (C, L) as its
    channel x position heat map; a volume by its slice at `depth` (default the middle); a flat
    vector as a one-row strip. Averaged over blocks when larger; one range for the whole."""
    if sample.ndim == 1:
        image = _signal_image(sample[np.newaxis], max_side)
        step: tuple[int, ...] = (-(-sample.shape[0] // max_side),)
    elif sample.ndim == 2:
        image = _signal_image(sample, max_side)
        step = (max(1, -(-sample.shape[1] // max_side)),)
    elif sample.ndim == 3 and sample.shape[0] == 3:
        step = _fit_step(*sample.shape[1:], max_side)
        height, width = sample.shape[1] // step[0], sample.shape[2] // step[1]
        image = np.empty((height, width, 3), np.float32)
        for k in range(3):
            pool(sample[k], *step, out=image[:, :, k])
    else:
        if sample.ndim == 4:
            depth = clamp_depth(sample.shape[1] // 2 if depth is None else depth,
                                sample.shape[1])
            maps = sample[:, depth]
        else:
            maps = sample
        step = _fit_step(*maps.shape[1:], max_side)
        image = _mean_image(maps, max_side)
    _scale(image, *_finite_range(image))
    return InputPreview(image, step, depth if sample.ndim == 4 else None)


def pool_mask(mask: np.ndarray, preview: InputPreview) -> np.ndarray | None:
    """A receptive-field mask over the input's spatial axes, brought to the preview's pixels (a
    pixel is in when any input pixel of its block is): (H, W) for an image preview, the middle
    or shown slice of a volume, a signal's positions repeated over the preview's rows. None
    when the mask does not fit the preview."""
    if mask.ndim == 3:
        mask = mask[clamp_depth(mask.shape[0] // 2 if preview.depth is None else preview.depth,
                                mask.shape[0])]
    height, width = preview.image.shape[:2]
    if mask.ndim == 1 and len(preview.step) == 1:
        (step,) = preview.step
        if mask.shape[0] // step != width:
            return None
        row = mask[:width * step].reshape(width, step).any(axis=1)
        return np.repeat(row[np.newaxis], height, axis=0)
    if mask.ndim == 2 and len(preview.step) == 2:
        step_y, step_x = preview.step
        if (mask.shape[0] // step_y, mask.shape[1] // step_x) != (height, width):
            return None
        blocks = mask[:height * step_y, :width * step_x].reshape(height, step_y, width, step_x)
        return blocks.any(axis=(1, 3))
    return None


def layer_stats(output: np.ndarray) -> LayerStats:
    """min, max, mean and share of zeros over the whole output (any shape, non-empty), read in
    chunks of at most CHUNK elements."""
    low, high, total, zeros = math.inf, -math.inf, 0.0, 0
    for part in chunks(output):
        low = float(np.minimum(low, part.min()))  # NaN stays NaN, as min over all would
        high = float(np.maximum(high, part.max()))
        total += float(part.sum(dtype=np.float64))
        zeros += int(np.count_nonzero(part == 0))
    return LayerStats(low, high, total / output.size, zeros / output.size)
