"""ONNX rules for the shape, resampling and matrix-product kinds (engine.onnx.registry).

Export writes nodes valid at the writer's opset (13 and later): Resize with a scales input, or
sizes with the axes attribute from opset 18 (before it, sizes become the float32 scales whose
floor gives them); Pad, Slice and the Reduce axes as inputs where the opset takes them.
Import reads every version from opset 7 on: Upsample (scales attribute, then input), Resize 10
(asymmetric coordinates), Pad/Slice/Reduce attribute forms, Squeeze/Unsqueeze as Reshape, and
Split as one Slice per output (split_parts: the graph importer calls it, since one node gives
several layers).
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np
import onnx

from engine.onnx.limits import shown
from engine.onnx.registry import Imported, Reader, Writer, exports, imports, runtime_inputs
from models.errors import ConfigError, FileFormatError
from models.layers.base import LayerInfo
from models.layers.matmul import Gemm, MatMul
from models.layers.resample import (COORDINATE_MODES, DepthToSpace, Pad, Resize, SpaceToDepth,
                                    resize_coordinates)
from models.layers.shape_ops import (ChannelShuffle, Identity, Reduce, Reshape, Slice, Transpose,
                                     flatten_shape)
from models.layers.structure import Flatten

Weights = Mapping[str, np.ndarray]
RESIZE_AXES_OPSET = 18  # Resize's axes attribute
HALF_PIXEL_SYMMETRIC_OPSET = 19
WRAP_OPSET = 19
SPACE_TO_DEPTH_MODE_OPSET = 28  # SpaceToDepth's mode attribute (CRD order)
REDUCE_AXES_INPUT = {"ReduceSum": 13, "ReduceMean": 18, "ReduceMax": 18, "ReduceMin": 18}


def _decimal(value: float) -> float:
    """A float32 value as the shortest decimal that rounds to it (0.3, not 0.30000001)."""
    return float(str(np.float32(value)))


def _needed(r: Reader, node: onnx.NodeProto, index: int, what: str) -> np.ndarray | None:
    """The constant value of optional input `index` (None when absent or empty); refuses a
    runtime tensor there."""
    if len(node.input) <= index or not node.input[index]:
        return None
    value = r.constant(node.input[index])
    if value is None:
        raise r.fail(node, f"its {what} are computed at run time; ConvScope needs them constant")
    return np.asarray(value)


def _checked(r: Reader, node: onnx.NodeProto, spec: Any, sample: tuple[int, ...]) -> None:
    """Raise r.fail with analyse's message when the spec cannot work on the sample shape."""
    try:
        spec.analyse(sample)
    except ConfigError as error:
        raise r.fail(node, error.reason) from None


def _sample(r: Reader, node: onnx.NodeProto) -> tuple[int, ...]:
    return tuple(r.shape(node.input[0]))[1:]


# --- Resize / Upsample -----------------------------------------------------------------------

def _sizes_as_scales(spatial: tuple[int, ...], sizes: tuple[int, ...]) -> list[float]:
    """float32 scales out / in, nudged up until floor(in * scale) gives the size in float32
    (as onnxruntime computes it) and in double (as onnx's shape inference does)."""
    scales = []
    for w, o in zip(spatial, sizes):
        s = np.float32(o) / np.float32(w)
        while np.floor(s * np.float32(w)) < o or np.floor(float(s) * w) < o:
            s = np.nextafter(s, np.float32(np.inf))
        scales.append(float(s))
    return scales


@exports(Resize)
def _export_resize(w: Writer, spec: Resize, info: LayerInfo, weights: Weights, prefix: str,
                   inputs: list[str], out: str) -> str:
    rank = len(info.output_shape) - 1
    ctm = spec.coordinate_transformation_mode
    spatial = info.attrs["in_sizes"]
    if ctm == "half_pixel_symmetric" and w.opset < HALF_PIXEL_SYMMETRIC_OPSET:
        same = all(np.array_equal(resize_coordinates(i, o, s, ctm),
                                  resize_coordinates(i, o, s, "half_pixel"))
                   for i, o, s in zip(spatial, info.attrs["sizes"], info.attrs["scales"]))
        if not same:
            raise FileFormatError(f"Resize's half_pixel_symmetric coordinates need opset "
                                  f"{HALF_PIXEL_SYMMETRIC_OPSET} or newer; export with --opset "
                                  f"{HALF_PIXEL_SYMMETRIC_OPSET}")
        ctm = "half_pixel"  # the same coordinates when the scale gives the size exactly
    # nearest_mode is written in linear mode too, where ONNX ignores it: the spec holds it, and
    # import -> export -> import gives the spec back whole.
    attrs: dict[str, object] = {"mode": spec.mode, "coordinate_transformation_mode": ctm,
                                "nearest_mode": spec.nearest_mode}
    roi = ""
    if ctm == "tf_crop_and_resize":
        roi = w.weight(f"{prefix}roi", np.array([0.0] * (rank + 2) + [1.0] * (rank + 2)))
    if spec.sizes and w.opset >= RESIZE_AXES_OPSET:
        sizes = w.int64(f"{prefix}sizes", list(spec.sizes))
        attrs["axes"] = list(range(2, rank + 2))
        return w.node("Resize", [inputs[0], roi, "", sizes], out, info.output_shape, **attrs)
    given = _sizes_as_scales(spatial, spec.sizes) if spec.sizes else list(spec.scales)
    scales = w.weight(f"{prefix}scales", np.array([1.0, 1.0, *given], np.float32))
    return w.node("Resize", [inputs[0], roi, scales], out, info.output_shape, **attrs)


def _full(values: np.ndarray, axes: list[int] | None, base: list[float]) -> list[float]:
    """Per-axis values over all axes: `values` for `axes` (all when None), `base` elsewhere."""
    if axes is None:
        return [float(v) for v in values]
    full = list(base)
    for axis, v in zip(axes, values):
        full[axis % len(base)] = float(v)
    return full


def _resize_spec(r: Reader, node: onnx.NodeProto, mode: str, ctm: str, nearest: str,
                 scales: list[float] | None, sizes: list[float] | None) -> Imported:
    shape = tuple(r.shape(node.input[0]))
    if len(shape) < 3:
        raise r.fail(node, f"it resizes a tensor of shape {shape} with no spatial axis")
    kept = (scales is None or scales[:2] == [1.0, 1.0]) and \
        (sizes is None or list(sizes[:2]) == list(shape[:2]))
    if not kept:
        raise r.fail(node, "it resizes the batch or channel axis; ConvScope resizes only the "
                           "spatial axes")
    if mode not in ("nearest", "linear"):
        raise r.fail(node, f"its mode {shown(str(mode))} is not supported (nearest and linear "
                           f"are); export the model with nearest or (bi/tri)linear resizing")
    spec = Resize(mode=mode, coordinate_transformation_mode=ctm, nearest_mode=nearest,
                  scales=tuple(_decimal(s) for s in scales[2:]) if sizes is None else (),
                  sizes=tuple(int(s) for s in sizes[2:]) if sizes is not None else ())
    _checked(r, node, spec, shape[1:])
    return Imported(spec=spec, inputs=(node.input[0],))


@imports("Upsample")
def _import_upsample(r: Reader, node: onnx.NodeProto) -> Imported:
    attrs = r.attrs(node)
    scales = attrs.get("scales")
    if scales is None:
        scales = _needed(r, node, 1, "scales")
    if scales is None:
        raise r.fail(node, "it has no scales")
    mode = attrs.get("mode", "nearest")
    # Upsample's nearest picks floor(x / scale) (asymmetric coordinates, rounded down).
    return _resize_spec(r, node, "linear" if mode == "bilinear" else mode, "asymmetric", "floor",
                        [float(s) for s in scales], None)


@imports("Resize")
def _import_resize(r: Reader, node: onnx.NodeProto) -> Imported:
    attrs = r.attrs(node)
    mode = attrs.get("mode", "nearest")
    if mode == "cubic":
        raise r.fail(node, "it resizes by cubic interpolation, which ConvScope does not "
                           "compute; export the model with nearest or linear resizing")
    if attrs.get("antialias", 0):
        raise r.fail(node, "it antialiases (antialias=1), which ConvScope does not compute; "
                           "export the model with antialias off")
    rank = len(r.shape(node.input[0]))
    if r.opset < 11:
        scales = _needed(r, node, 1, "scales")
        if scales is None:
            raise r.fail(node, "it has no scales")
        if mode == "nearest" and min(scales) < 1:
            raise r.fail(node, "it shrinks by nearest resizing at opset 10, whose rounding "
                               "runtimes disagree on; re-export the model at opset 11 or newer")
        return _resize_spec(r, node, mode, "asymmetric", "floor", [float(s) for s in scales],
                            None)
    ctm = attrs.get("coordinate_transformation_mode", "half_pixel")
    if ctm not in COORDINATE_MODES:
        raise r.fail(node, f"its coordinate_transformation_mode {shown(str(ctm))} is unknown")
    axes = attrs.get("axes")
    axes = None if axes is None else [a + rank if a < 0 else a for a in axes]
    if ctm == "tf_crop_and_resize":
        roi = _needed(r, node, 1, "roi")
        n = len(axes) if axes is not None else rank
        if roi is None or list(np.asarray(roi, float)) != [0.0] * n + [1.0] * n:
            raise r.fail(node, "it crops a region of interest (tf_crop_and_resize with a roi "
                               "other than the whole tensor), which ConvScope does not hold")
    scales = _needed(r, node, 2, "scales")
    sizes = _needed(r, node, 3, "sizes")
    if scales is not None and scales.size == 0:
        scales = None
    if sizes is not None and sizes.size == 0:
        sizes = None
    if (scales is None) == (sizes is None):
        raise r.fail(node, "it needs exactly one of scales and sizes")
    if sizes is not None and attrs.get("keep_aspect_ratio_policy", "stretch") != "stretch":
        shape = r.shape(node.input[0])
        full = _full(sizes, axes, [float(d) for d in shape])
        if len({o / i for o, i in zip(full[2:], shape[2:])}) > 1:
            raise r.fail(node, "it keeps the aspect ratio of sizes (keep_aspect_ratio_policy), "
                               "which ConvScope does not hold; give scales or exact sizes")
    full_scales = None if scales is None else _full(scales, axes, [1.0] * rank)
    full_sizes = None if sizes is None else _full(sizes, axes,
                                                  [float(d) for d in r.shape(node.input[0])])
    return _resize_spec(r, node, mode, ctm, attrs.get("nearest_mode", "round_prefer_floor"),
                        full_scales, full_sizes)


# --- Pad ---------------------------------------------------------------------------------------

@exports(Pad)
def _export_pad(w: Writer, spec: Pad, info: LayerInfo, weights: Weights, prefix: str,
                inputs: list[str], out: str) -> str:
    if spec.mode == "wrap" and w.opset < WRAP_OPSET:
        raise FileFormatError(f"Pad's wrap mode needs opset {WRAP_OPSET} or newer; export with "
                              f"--opset {WRAP_OPSET}")
    rank = len(spec.pads) // 2
    pads = w.int64(f"{prefix}pads", [0, *spec.pads[:rank], 0, *spec.pads[rank:]])
    operands = [inputs[0], pads]
    if spec.mode == "constant" and spec.value != 0:
        operands.append(w.weight(f"{prefix}value", np.array(spec.value, np.float32)))
    return w.node("Pad", operands, out, info.output_shape, mode=spec.mode)


@imports("Pad")
def _import_pad(r: Reader, node: onnx.NodeProto) -> Imported:
    attrs = r.attrs(node)
    rank = len(r.shape(node.input[0]))
    if r.opset < 11:
        pads, value = np.asarray(attrs.get("pads", []), np.int64), attrs.get("value", 0.0)
    else:
        pads = _needed(r, node, 1, "pads")
        constant = _needed(r, node, 2, "constant value")
        value = 0.0 if constant is None else float(np.asarray(constant).reshape(-1)[0])
    if pads is None:
        raise r.fail(node, "it has no pads")
    axes = _needed(r, node, 3, "axes")
    axes_list = list(range(rank)) if axes is None else [int(a) % rank for a in axes]
    if len(pads) != 2 * len(axes_list):
        raise r.fail(node, f"its {len(pads)} pads do not give a begin and an end for "
                           f"{len(axes_list)} axes")
    begins, ends = [0] * rank, [0] * rank
    for axis, b, e in zip(axes_list, pads[:len(axes_list)], pads[len(axes_list):]):
        begins[axis], ends[axis] = int(b), int(e)
    if begins[0] or ends[0]:
        raise r.fail(node, "it pads the batch axis; ConvScope never changes the batch")
    spec = Pad(mode=attrs.get("mode", "constant"), pads=(*begins[1:], *ends[1:]),
               value=_decimal(value))
    _checked(r, node, spec, _sample(r, node))
    return Imported(spec=spec, inputs=(node.input[0],))


# --- DepthToSpace / SpaceToDepth ----------------------------------------------------------------

@exports(DepthToSpace, SpaceToDepth)
def _export_blocks(w: Writer, spec: DepthToSpace | SpaceToDepth, info: LayerInfo,
                   weights: Weights, prefix: str, inputs: list[str], out: str) -> str:
    attrs: dict[str, object] = {"blocksize": spec.blocksize}
    if isinstance(spec, DepthToSpace) or w.opset >= SPACE_TO_DEPTH_MODE_OPSET:
        attrs["mode"] = spec.mode
    elif spec.mode != "DCR":  # older SpaceToDepth has no mode attribute: it always means DCR
        raise ConfigError(f"SpaceToDepth's CRD order needs ONNX opset "
                          f"{SPACE_TO_DEPTH_MODE_OPSET} or newer; export with --opset "
                          f"{SPACE_TO_DEPTH_MODE_OPSET}, or set the order to DCR", field="mode")
    return w.node(type(spec).__name__, inputs[:1], out, info.output_shape, **attrs)


@imports("DepthToSpace", "SpaceToDepth")
def _import_blocks(r: Reader, node: onnx.NodeProto) -> Imported:
    attrs = r.attrs(node)
    kind = DepthToSpace if node.op_type == "DepthToSpace" else SpaceToDepth
    mode = attrs.get("mode", "DCR")
    if mode not in ("DCR", "CRD"):
        raise r.fail(node, f"its mode {shown(str(mode))} is unknown (DCR and CRD are)")
    spec = kind(blocksize=attrs["blocksize"], mode=mode)
    _checked(r, node, spec, _sample(r, node))
    return Imported(spec=spec, inputs=(node.input[0],))


# --- Slice / Split --------------------------------------------------------------------------

@exports(Slice)
def _export_slice(w: Writer, spec: Slice, info: LayerInfo, weights: Weights, prefix: str,
                  inputs: list[str], out: str) -> str:
    operands = [inputs[0]] + [w.int64(f"{prefix}{name}", list(getattr(spec, name)))
                              for name in ("starts", "ends", "axes", "steps")]
    return w.node("Slice", operands, out, info.output_shape)


@imports("Slice")
def _import_slice(r: Reader, node: onnx.NodeProto) -> Imported:
    shape = tuple(r.shape(node.input[0]))
    if r.opset < 10:
        attrs = r.attrs(node)
        starts, ends = list(attrs["starts"]), list(attrs["ends"])
        axes = list(attrs.get("axes", range(len(starts))))
        steps = [1] * len(starts)
    else:
        found = [_needed(r, node, i, what) for i, what in
                 enumerate(("", "starts", "ends", "axes", "steps")) if i]
        if found[0] is None or found[1] is None:
            raise r.fail(node, "it has no starts or ends")
        starts, ends = [int(v) for v in found[0]], [int(v) for v in found[1]]
        axes = list(range(len(starts))) if found[2] is None else [int(v) for v in found[2]]
        steps = [1] * len(starts) if found[3] is None else [int(v) for v in found[3]]
    kept = []
    for entry in zip(starts, ends, axes, steps):
        start, end, axis, step = entry
        if axis % len(shape) == 0:
            batch = shape[0]
            begin = start + batch if start < 0 else start
            stop = end + batch if end < 0 else end
            if step != 1 or begin > 0 or stop < batch:
                raise r.fail(node, "it slices the batch axis; ConvScope never changes the batch")
            continue  # the whole batch: nothing to slice
        kept.append(entry)
    if not kept:
        return Imported(spec=Identity(), inputs=(node.input[0],))
    spec = Slice(*(tuple(v) for v in zip(*kept)))
    _checked(r, node, spec, shape[1:])
    return Imported(spec=spec, inputs=(node.input[0],))


def split_parts(r: Reader, node: onnx.NodeProto) -> list[Imported]:
    """One Imported Slice per output of an ONNX Split node, in output order.

    The sizes come from the `split` attribute (before opset 13), the split input (13+),
    num_outputs (18+: ceil(size / n) each, the last the rest), else equal parts.
    """
    attrs = r.attrs(node)
    shape = tuple(r.shape(node.input[0]))
    axis = attrs.get("axis", 0)
    full = axis + len(shape) if axis < 0 else axis
    if not 0 < full < len(shape):
        raise r.fail(node, f"it splits axis {axis}, the batch or none; ConvScope never splits "
                           f"the batch")
    size = shape[full]
    count = len(node.output)
    split = attrs.get("split") if r.opset < 13 else _needed(r, node, 1, "split sizes")
    if split is not None and len(split):
        sizes = [int(s) for s in split]
    elif "num_outputs" in attrs:
        chunk = -(-size // int(attrs["num_outputs"]))
        sizes = [chunk] * (count - 1) + [size - chunk * (count - 1)]
    else:
        if size % count:
            raise r.fail(node, f"it splits {size} into {count} equal parts, which does not divide")
        sizes = [size // count] * count
    if sum(sizes) != size or len(sizes) != count:
        raise r.fail(node, f"its parts {sizes} do not cover the axis of {size}")
    parts, start = [], 0
    for part in sizes:
        spec = Slice(starts=(start,), ends=(start + part,), axes=(axis,), steps=(1,))
        _checked(r, node, spec, shape[1:])
        parts.append(Imported(spec=spec, inputs=(node.input[0],)))
        start += part
    return parts


# --- Reduce ---------------------------------------------------------------------------------

@exports(Reduce)
def _export_reduce(w: Writer, spec: Reduce, info: LayerInfo, weights: Weights, prefix: str,
                   inputs: list[str], out: str) -> str:
    op = "Reduce" + spec.op.capitalize()
    if w.opset >= REDUCE_AXES_INPUT[op]:
        axes = w.int64(f"{prefix}axes", list(spec.axes))
        return w.node(op, [inputs[0], axes], out, info.output_shape, keepdims=int(spec.keepdims))
    return w.node(op, inputs[:1], out, info.output_shape, axes=list(spec.axes),
                  keepdims=int(spec.keepdims))


@imports("ReduceMean", "ReduceMax", "ReduceSum", "ReduceMin")
def _import_reduce(r: Reader, node: onnx.NodeProto) -> Imported:
    attrs = r.attrs(node)
    if r.opset >= REDUCE_AXES_INPUT[node.op_type]:
        found = _needed(r, node, 1, "axes")
        axes = None if found is None or found.size == 0 else [int(a) for a in found]
    else:
        axes = attrs.get("axes")
    if not axes:
        if attrs.get("noop_with_empty_axes", 0):
            return Imported(spec=Identity(), inputs=(node.input[0],))
        raise r.fail(node, "it reduces every axis, the batch included; ConvScope keeps each "
                           "sample apart")
    spec = Reduce(op=node.op_type[len("Reduce"):].lower(), axes=tuple(axes),
                  keepdims=bool(attrs.get("keepdims", 1)))
    _checked(r, node, spec, _sample(r, node))
    return Imported(spec=spec, inputs=(node.input[0],))


# --- Flatten / Gemm / MatMul ------------------------------------------------------------------

@exports(Flatten)
def _export_flatten(w: Writer, spec: Flatten, info: LayerInfo, weights: Weights, prefix: str,
                    inputs: list[str], out: str) -> str:
    return w.node("Flatten", inputs[:1], out, info.output_shape, axis=getattr(spec, "axis", 1))


@imports("Flatten")
def _import_flatten(r: Reader, node: onnx.NodeProto) -> Imported:
    axis = r.attrs(node).get("axis", 1)
    try:
        flatten_shape(_sample(r, node), axis)
    except ConfigError as error:
        raise r.fail(node, error.reason) from None
    return Imported(spec=Flatten() if axis == 1 else Flatten(axis=axis),  # type: ignore[call-arg]
                    inputs=(node.input[0],))


@exports(Gemm)
def _export_gemm(w: Writer, spec: Gemm, info: LayerInfo, weights: Weights, prefix: str,
                 inputs: list[str], out: str) -> str:
    operands = [inputs[0], w.weight(f"{prefix}W", weights["W"])]
    if "B" in weights:
        operands.append(w.weight(f"{prefix}B", weights["B"]))
    return w.node("Gemm", operands, out, info.output_shape, alpha=spec.alpha, beta=spec.beta,
                  transA=int(spec.transA), transB=int(spec.transB))


@imports("Gemm")
def _import_gemm(r: Reader, node: onnx.NodeProto) -> Imported:
    attrs = r.attrs(node)
    if attrs.get("transA", 0):
        raise r.fail(node, "it multiplies with its input transposed (transA=1), which "
                           "contracts the batch axis; ConvScope keeps samples apart")
    if r.constant(node.input[0]) is not None:
        raise r.fail(node, "its first operand is a constant; ConvScope needs the data there")
    weight = _needed(r, node, 1, "weights")
    if weight is None or weight.ndim != 2:
        raise r.fail(node, "its second operand must be a constant matrix")
    bias = _needed(r, node, 2, "bias")
    trans_b = bool(attrs.get("transB", 0))
    spec = Gemm(units=weight.shape[0] if trans_b else weight.shape[1],
                alpha=_decimal(attrs.get("alpha", 1.0)), beta=_decimal(attrs.get("beta", 1.0)),
                transB=trans_b, bias_shape=None if bias is None else tuple(bias.shape))
    _checked(r, node, spec, _sample(r, node))
    weights = {"W": weight.astype(np.float32)}
    if bias is not None:
        weights["B"] = bias.astype(np.float32)
    return Imported(spec=spec, weights=weights, inputs=(node.input[0],))


@exports(MatMul)
def _export_matmul(w: Writer, spec: MatMul, info: LayerInfo, weights: Weights, prefix: str,
                   inputs: list[str], out: str) -> str:
    return w.node("MatMul", [inputs[0], w.weight(f"{prefix}W", weights["W"])], out,
                  info.output_shape)


@imports("MatMul")
def _import_matmul(r: Reader, node: onnx.NodeProto) -> Imported:
    if r.constant(node.input[0]) is not None or r.constant(node.input[1]) is None:
        raise r.fail(node, "ConvScope reads MatMul only as data times a constant matrix")
    weight = np.asarray(r.constant(node.input[1]))
    if weight.ndim != 2 or len(r.shape(node.input[0])) < 2:
        raise r.fail(node, f"its constant operand has shape {weight.shape}; ConvScope reads "
                           f"MatMul with a 2-D constant on the right of a batched input")
    spec = MatMul(units=weight.shape[1])
    _checked(r, node, spec, _sample(r, node))
    return Imported(spec=spec, weights={"W": weight.astype(np.float32)},
                    inputs=(node.input[0],))


# --- Transpose / Reshape / Squeeze / Unsqueeze / ChannelShuffle ---------------------------------

@exports(Transpose)
def _export_transpose(w: Writer, spec: Transpose, info: LayerInfo, weights: Weights,
                      prefix: str, inputs: list[str], out: str) -> str:
    return w.node("Transpose", inputs[:1], out, info.output_shape, perm=list(spec.perm))


@imports("Transpose")
def _import_transpose(r: Reader, node: onnx.NodeProto) -> Imported:
    rank = len(r.shape(node.input[0]))
    perm = r.attrs(node).get("perm", list(range(rank))[::-1])
    spec = Transpose(perm=tuple(perm))
    _checked(r, node, spec, _sample(r, node))
    return Imported(spec=spec, inputs=(node.input[0],))


@exports(Reshape)
def _export_reshape(w: Writer, spec: Reshape, info: LayerInfo, weights: Weights, prefix: str,
                    inputs: list[str], out: str) -> str:
    shape = w.int64(f"{prefix}shape", [0, *info.output_shape])
    return w.node("Reshape", [inputs[0], shape], out, info.output_shape)


def _reshaped(r: Reader, node: onnx.NodeProto, target: list[int]) -> Imported:
    spec = Reshape(shape=tuple(target))
    _checked(r, node, spec, _sample(r, node))
    return Imported(spec=spec, inputs=(node.input[0],))


@imports("Reshape")
def _import_reshape(r: Reader, node: onnx.NodeProto) -> Imported:
    given = _needed(r, node, 1, "target shape")
    if given is None:
        raise r.fail(node, "it has no target shape")
    shape = tuple(r.shape(node.input[0]))
    dims = [int(d) for d in given]
    if r.attrs(node).get("allowzero", 0) and 0 in dims:
        raise r.fail(node, "it makes an axis of size 0 (allowzero=1)")
    rest = [shape[i] if d == 0 else d for i, d in enumerate(dims) if i > 0]
    if dims[0] == -1:
        if -1 in rest or math.prod(shape) != shape[0] * math.prod(rest):
            raise r.fail(node, f"its target {dims} would change the batch of {shape[0]}")
    elif dims[0] not in (0, shape[0]):
        raise r.fail(node, f"its target {dims} changes the batch of {shape[0]}; ConvScope keeps "
                           f"the batch")
    if -1 in rest:
        known = math.prod(d for d in rest if d != -1)
        rest[rest.index(-1)] = math.prod(shape[1:]) // max(known, 1)
    return _reshaped(r, node, rest)


@imports("Squeeze", "Unsqueeze")
def _import_squeeze(r: Reader, node: onnx.NodeProto) -> Imported:
    shape = list(r.shape(node.input[0]))
    found = r.attrs(node).get("axes") if r.opset < 13 else _needed(r, node, 1, "axes")
    squeeze = node.op_type == "Squeeze"
    if found is None:
        if not squeeze:
            raise r.fail(node, "it has no axes")
        found = [i for i, d in enumerate(shape) if d == 1]
    rank = len(shape) if squeeze else len(shape) + len(found)
    axes = sorted(int(a) % rank for a in found)
    if 0 in axes:
        raise r.fail(node, f"it {'removes' if squeeze else 'inserts'} the batch axis; ConvScope "
                           f"keeps the batch first")
    if squeeze:
        target = [d for i, d in enumerate(shape) if i not in axes]
    else:
        target = list(shape)
        for axis in axes:
            target.insert(axis, 1)
    return _reshaped(r, node, target[1:])


@exports(ChannelShuffle)
def _export_channel_shuffle(w: Writer, spec: ChannelShuffle, info: LayerInfo, weights: Weights,
                            prefix: str, inputs: list[str], out: str) -> str:
    channels, *spatial = info.output_shape
    g = spec.groups
    grouped = (g, channels // g, *spatial)
    split = w.node("Reshape", [inputs[0], w.int64(f"{prefix}groups", [0, *grouped])],
                   f"{out}/groups", grouped)
    swapped = w.node("Transpose", [split], f"{out}/swapped", (channels // g, g, *spatial),
                     perm=[0, 2, 1, *range(3, len(grouped) + 1)])
    return w.node("Reshape", [swapped, w.int64(f"{prefix}shape", [0, *info.output_shape])], out,
                  info.output_shape)


# --- Identity / Dropout -----------------------------------------------------------------------

@exports(Identity)
def _export_identity(w: Writer, spec: Identity, info: LayerInfo, weights: Weights, prefix: str,
                     inputs: list[str], out: str) -> str:
    return w.node("Identity", inputs[:1], out, info.output_shape)


@imports("Identity", "Dropout")
def _import_identity(r: Reader, node: onnx.NodeProto) -> Imported:
    if node.op_type == "Dropout" and len(node.input) > 2 and node.input[2]:
        training = r.constant(node.input[2])
        if training is None or bool(np.asarray(training).reshape(-1)[0]):
            raise r.fail(node, "it may run in training mode (its training_mode input is not a "
                               "constant false); export the model in evaluation mode")
    if node.op_type == "Dropout" and r.attrs(node).get("is_test", 1) == 0:
        raise r.fail(node, "it is in training mode (is_test=0); export the model in "
                           "evaluation mode")
    return Imported(spec=Identity(), inputs=runtime_inputs(r, node)[:1])
