"""Layers that change the spatial grid: Resize (nearest / linear), Pad, DepthToSpace and
SpaceToDepth, and the per-axis arithmetic of Resize (`resize_taps`) that both the engine's
kernel and the exact receptive window use, so they cannot disagree.

Resize follows ONNX Resize (opset 19) as onnxruntime computes it: coordinates in float32, the
output size floor(size * scale) for scales, the scale size_out / size_in for sizes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from models.errors import ConfigError
from models.fields import param
from models.geometry import RFStep
from models.layers.base import (LayerInfo, LayerSpec, Shape, as_choice, as_float, as_int,
                                describe_shape, register, require_rank, require_spatial, set_field)
from models.layers.shape_ops import as_int_tuple

RESIZE_MODES = ("nearest", "linear")
COORDINATE_MODES = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
                    "asymmetric", "tf_crop_and_resize")
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


def resize_coordinates(size: int, out_size: int, scale: float, mode: str,
                       from_sizes: bool = False) -> np.ndarray:
    """(out_size,) float32: the input coordinate each output position samples along one axis.

    `scale` is the float32 scale ONNX uses (given, or out_size / size when `from_sizes`);
    tf_crop_and_resize is the full region of interest (roi 0 to 1). The arithmetic is
    onnxruntime's, float32 except where it computes in double (half_pixel_symmetric; asymmetric
    from sizes, which onnxruntime evaluates as the exact ratio x * size / out_size).
    """
    f = np.float32
    x = np.arange(out_size, dtype=f)
    s, length, resized, half = f(scale), f(size), f(out_size), f(0.5)
    if mode == "half_pixel":
        return (x + half) / s - half
    if mode == "half_pixel_symmetric":
        adjustment = resized / f(s * length)
        offset = f(length / f(2)) * (f(1) - adjustment)
        return (np.float64(offset) + (x.astype(np.float64) + 0.5) / np.float64(s) - 0.5).astype(f)
    if mode == "pytorch_half_pixel":
        return (x + half) / s - half if out_size > 1 else np.zeros_like(x)
    if mode == "asymmetric":
        return (np.arange(out_size) * size / out_size).astype(f) if from_sizes else x / s
    # align_corners and tf_crop_and_resize with the whole image as roi
    if out_size == 1:
        return np.full_like(x, 0.0 if mode == "align_corners" else 0.5 * (size - 1))
    return x * (length - f(1)) / (resized - f(1))


def resize_taps(size: int, out_size: int, scale: float, mode: str, coordinate_mode: str,
                nearest_mode: str, from_sizes: bool = False
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(first, second, w_first, w_second): output o = in[first[o]] * w_first[o] +
    in[second[o]] * w_second[o] along one axis. Indices are int64 inside [0, size); weights
    float32 (nearest: second = first, weights 1 and 0)."""
    x = resize_coordinates(size, out_size, scale, coordinate_mode, from_sizes)
    if mode == "nearest":
        floor = np.floor(x)
        tie = x == floor + np.float32(0.5)
        if nearest_mode == "round_prefer_floor":
            pick = np.where(tie, floor, np.round(x))
        elif nearest_mode == "round_prefer_ceil":
            pick = np.where(tie, floor + 1, np.round(x))
        else:
            pick = floor if nearest_mode == "floor" else np.ceil(x)
        first = np.clip(pick, 0, size - 1).astype(np.int64)
        return first, first, np.ones(out_size, np.float32), np.zeros(out_size, np.float32)
    x = np.clip(x, np.float32(0), np.float32(size - 1))
    first = np.minimum(x.astype(np.int64), size - 1)
    second = np.minimum(first + 1, size - 1)
    w_second = (x - first).astype(np.float32)
    w_first = (second - x).astype(np.float32)
    same = first == second
    w_first[same] = w_second[same] = np.float32(0.5)
    return first, second, w_first, w_second


def resize_plan(spec: Resize, spatial: Shape) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """(output sizes, float32 scales the coordinates use) per spatial axis.

    Where the output has the input's shape, onnxruntime copies the input whatever the
    coordinates say; the kernel and the receptive window do the same."""
    if spec.sizes:
        sizes = tuple(spec.sizes)
        scales = tuple(float(np.float32(o) / np.float32(w)) for o, w in zip(sizes, spatial))
        return sizes, scales
    sizes = tuple(int(np.floor(np.float32(s) * np.float32(w))) for s, w in zip(spec.scales, spatial))
    return sizes, tuple(spec.scales)


def _resize_step(size: int, out_size: int, linear: bool) -> RFStep:
    """An estimate unless the ratio is a whole number: nearest up by s spreads each input over s
    outputs; linear reads about 2 neighbours; down by d strides by d."""
    if out_size >= size:
        s = max(1, round(out_size / size))
        return RFStep(2 * s, s, s - 1, transposed=True) if linear else \
            RFStep(s, s, s - 1, transposed=True)
    return RFStep(2 if linear else 1, max(1, round(size / out_size)))


@register
@dataclass(frozen=True)
class Resize(LayerSpec):
    """ONNX Resize over the spatial axes (never batch or channels), nearest or (bi/tri)linear."""
    category = "Resampling"
    description = "Scales the spatial axes up or down by nearest or linear interpolation."

    mode: str = param("nearest", "Mode", "nearest copies the closest pixel; linear blends the "
                      "neighbours (bilinear, trilinear).", choices=RESIZE_MODES)
    coordinate_transformation_mode: str = param(
        "half_pixel", "Coordinates", "How an output pixel maps to an input coordinate (ONNX "
        "coordinate_transformation_mode).", choices=COORDINATE_MODES)
    nearest_mode: str = param("round_prefer_floor", "Rounding", "How nearest rounds a coordinate "
                              "to a pixel.", choices=NEAREST_MODES, used_when=("mode", "nearest"))
    scales: tuple[float, ...] = param((2.0, 2.0), "Scales", "Factor per spatial axis (output = "
                                      "floor(input * scale)).", minimum=0.01,
                                      maximum=64.0, step=0.5)
    sizes: tuple[int, ...] = param((), "Sizes", "Output size per spatial axis; empty: use the "
                                   "scales.", minimum=1, maximum=65536, unit="px")

    def __post_init__(self) -> None:
        as_choice(self, "mode", RESIZE_MODES)
        as_choice(self, "coordinate_transformation_mode", COORDINATE_MODES)
        as_choice(self, "nearest_mode", NEAREST_MODES)
        as_int_tuple(self, "sizes")
        value = self.scales
        values = list(value) if isinstance(value, (list, tuple)) else [value]
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)
               for v in values):
            raise ConfigError(f"scales must be a list of numbers, got {value!r}", field="scales")
        set_field(self, "scales", tuple(float(v) for v in values))

    def analyse(self, in_shape: Shape) -> LayerInfo:
        require_spatial(self, in_shape)
        spatial = tuple(in_shape[1:])
        rank = len(spatial)
        name, given = ("sizes", self.sizes) if self.sizes else ("scales", self.scales)
        if len(given) != rank:
            raise ConfigError(f"{name} has {len(given)} entries for {rank} spatial "
                              f"ax{'es' if rank > 1 else 'is'} {describe_shape(spatial)}; give "
                              f"one per spatial axis (batch and channels are never resized)",
                              field=name)
        if min(given) <= 0:
            raise ConfigError(f"{name} holds {min(given):g}; each must be above 0", field=name)
        sizes, scales = resize_plan(self, spatial)
        if min(sizes) < 1:
            raise ConfigError(f"scales {list(self.scales)} shrink {describe_shape(spatial)} to "
                              f"{describe_shape(sizes)}; use scales of at least "
                              f"1 / size", field="scales")
        steps = tuple(_resize_step(w, o, self.mode == "linear") for w, o in zip(spatial, sizes))
        taps = 2 if self.mode == "linear" else 0
        return LayerInfo(output_shape=(in_shape[0], *sizes), rf_steps=(steps,),
                         macs=in_shape[0] * math.prod(sizes) * taps ** rank if taps else 0,
                         attrs={"sizes": sizes, "scales": scales, "in_sizes": spatial})

    def summary(self) -> str:
        size = "x".join(map(str, self.sizes)) if self.sizes else \
            "x" + "x".join(f"{s:g}" for s in self.scales)
        return f"{self.mode} {size}"


PAD_MODES = ("constant", "reflect", "edge", "wrap")


@register
@dataclass(frozen=True)
class Pad(LayerSpec):
    """ONNX Pad over the sample axes (channels and spatial; never the batch).

    pads: begins of every sample axis (C, *spatial), then their ends; negative values crop
    (constant and edge modes only).
    """
    category = "Resampling"
    description = "Adds a border (a constant, a mirror, the edge or a wrap) around the map."

    mode: str = param("constant", "Mode", "constant: the value; reflect: mirror without the "
                      "edge; edge: repeat the edge; wrap: the other side.", choices=PAD_MODES)
    pads: tuple[int, ...] = param((0, 1, 1, 0, 1, 1), "Pads", "Begins of each sample axis "
                                  "(channels, then spatial), then ends.")
    value: float = param(0.0, "Value", "The constant written into the border.",
                         used_when=("mode", "constant"))

    def __post_init__(self) -> None:
        as_choice(self, "mode", PAD_MODES)
        as_int_tuple(self, "pads")
        as_float(self, "value")

    def analyse(self, in_shape: Shape) -> LayerInfo:
        rank = len(in_shape)
        if len(self.pads) != 2 * rank:
            raise ConfigError(f"pads has {len(self.pads)} entries for the {rank} sample axes of "
                              f"{describe_shape(in_shape)}; give {2 * rank}: the begins of each "
                              f"(channels first), then the ends", field="pads")
        begins, ends = self.pads[:rank], self.pads[rank:]
        if min(self.pads) < 0 and self.mode in ("reflect", "wrap"):
            raise ConfigError(f"pads {list(self.pads)} crop (negative) in {self.mode} mode; crop "
                              f"with a Slice, or use constant or edge mode", field="pads")
        out = tuple(d + b + e for d, b, e in zip(in_shape, begins, ends))
        if min(out) < 1:
            raise ConfigError(f"pads {list(self.pads)} crop {describe_shape(in_shape)} to "
                              f"{describe_shape(out)}; crop less", field="pads")
        for d, b, e in zip(in_shape, begins, ends):
            if self.mode == "reflect" and max(b, e) > d - 1:
                raise ConfigError(f"reflect pads of {max(b, e)} need an axis longer than that, "
                                  f"but it has {d}; pad less or use edge mode", field="pads")
            if self.mode == "wrap" and max(b, e) > d:
                raise ConfigError(f"wrap pads of {max(b, e)} exceed the axis size {d}; pad less",
                                  field="pads")
        moved = any(begins[1:]) or any(ends[1:])
        steps = (tuple(RFStep(1, 1, b) for b in begins[1:]),) if moved else ()
        return LayerInfo(output_shape=out, rf_steps=steps)

    def summary(self) -> str:
        return f"{self.mode} " + ",".join(map(str, self.pads))


def _block_field() -> object:
    return param(2, "Block size", "The side of the square block moved between space and "
                 "channels.", minimum=1, maximum=64, unit="px")


@register
@dataclass(frozen=True)
class DepthToSpace(LayerSpec):
    """ONNX DepthToSpace on (C, H, W): C = c * b * b channels become b x b blocks of c."""
    category = "Resampling"
    description = "Moves channels into space: each pixel's channel blocks become a b x b patch."

    blocksize: int = _block_field()
    mode: str = param("DCR", "Order", "DCR: depth-column-row (TensorFlow); CRD: column-row-depth "
                      "(PyTorch PixelShuffle).", choices=("DCR", "CRD"))

    def __post_init__(self) -> None:
        as_int(self, "blocksize")
        as_choice(self, "mode", ("DCR", "CRD"))

    def analyse(self, in_shape: Shape) -> LayerInfo:
        require_rank(self, in_shape, 2)
        b = self.blocksize
        if b < 1 or in_shape[0] % (b * b):
            raise ConfigError(f"blocksize {b} needs channels divisible by {b * b}, but the input "
                              f"has {in_shape[0]}; use a blocksize whose square divides them",
                              field="blocksize")
        c, h, w = in_shape
        return LayerInfo(output_shape=(c // (b * b), h * b, w * b),
                         rf_steps=((RFStep(b, b, b - 1, True),) * 2,))


@register
@dataclass(frozen=True)
class SpaceToDepth(LayerSpec):
    """ONNX SpaceToDepth on (C, H, W): each b x b block becomes b * b * C channels."""
    category = "Resampling"
    description = "Moves space into channels: each b x b patch becomes one pixel of b*b*C."

    blocksize: int = _block_field()
    mode: str = param("DCR", "Order", "DCR: depth-column-row, the block's pixels outermost "
                      "(TensorFlow); CRD: column-row-depth, each channel's block together "
                      "(PyTorch PixelUnshuffle; ONNX opset 28).", choices=("DCR", "CRD"))

    def __post_init__(self) -> None:
        as_int(self, "blocksize")
        as_choice(self, "mode", ("DCR", "CRD"))

    def analyse(self, in_shape: Shape) -> LayerInfo:
        require_rank(self, in_shape, 2)
        b = self.blocksize
        c, h, w = in_shape
        if b < 1 or h % b or w % b:
            raise ConfigError(f"blocksize {b} must divide the height {h} and width {w}; use a "
                              f"common divisor", field="blocksize")
        return LayerInfo(output_shape=(c * b * b, h // b, w // b), rf_steps=((RFStep(b, b),) * 2,))
