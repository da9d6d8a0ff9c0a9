"""ONNX rules for the activation, element-wise math and normalisation kinds (engine.onnx.registry).

Export writes nodes valid at the writer's opset (13 and later): HardSwish is one node from opset
14 (before: HardSigmoid(1/6, 0.5) then Mul), Gelu from opset 20 (before: its erf or tanh
formula in basic ops), SiLU is always Sigmoid then Mul. Import reads every version of each op
from opset 7 on: Clip's bounds as attributes before opset 11 and constant inputs after, Softmax
and LogSoftmax's "flatten from axis" meaning before opset 13, BatchNormalization's old
spatial/is_test attributes. Multi-node forms (SiLU, HardSwish before 14, Gelu before 20) come
back as their parts: fusing patterns is the graph importer's business.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np
import onnx

from engine.onnx.limits import shown
from engine.onnx.registry import Imported, Reader, Writer, exports, imports, runtime_inputs
from models.layers.activation import (ELU, GELU, UNARY_OPS, Clip, HardSigmoid, HardSwish,
                                      LeakyReLU, LogSoftmax, PReLU, ReLU, Sigmoid, SiLU, Softmax,
                                      Tanh, Unary)
from models.layers.base import LayerInfo
from models.layers.normalization import LRN, InstanceNorm
from models.layers.structure import BatchNorm

HARD_SWISH_OPSET = 14
GELU_OPSET = 20
_FLOAT32_MAX = float(np.finfo(np.float32).max)
Weights = Mapping[str, np.ndarray]


def _decimal(value: float) -> float:
    """A float32 value (ONNX stores float attributes so) as the shortest decimal that rounds to
    it: 0.01 is written as 0.0099999998 and read back as 0.01."""
    return float(str(np.float32(value)))


def _scalar(w: Writer, name: str, value: float) -> str:
    return w.weight(name, np.array(value, np.float32))


# --- export -----------------------------------------------------------------------------------

@exports(ReLU, Sigmoid, Tanh, HardSwish, Unary)
def _export_plain(w: Writer, spec: Any, info: LayerInfo, weights: Weights, prefix: str,
                  inputs: list[str], out: str) -> str:
    shape = info.output_shape
    if isinstance(spec, Unary):
        return w.node(spec.op, inputs[:1], out, shape)
    if isinstance(spec, HardSwish) and w.opset < HARD_SWISH_OPSET:
        gate = w.node("HardSigmoid", inputs[:1], f"{out}/gate", shape, alpha=1.0 / 6.0, beta=0.5)
        return w.node("Mul", [inputs[0], gate], out, shape)
    op = {ReLU: "Relu", Sigmoid: "Sigmoid", Tanh: "Tanh", HardSwish: "HardSwish"}[type(spec)]
    return w.node(op, inputs[:1], out, shape)


@exports(LeakyReLU, ELU, HardSigmoid)
def _export_alpha(w: Writer, spec: LeakyReLU | ELU | HardSigmoid, info: LayerInfo,
                  weights: Weights, prefix: str, inputs: list[str], out: str) -> str:
    if isinstance(spec, HardSigmoid):
        return w.node("HardSigmoid", inputs[:1], out, info.output_shape, alpha=spec.alpha,
                      beta=spec.beta)
    op = "LeakyRelu" if isinstance(spec, LeakyReLU) else "Elu"
    return w.node(op, inputs[:1], out, info.output_shape, alpha=spec.alpha)


@exports(Softmax, LogSoftmax)
def _export_softmax(w: Writer, spec: Softmax | LogSoftmax, info: LayerInfo, weights: Weights,
                    prefix: str, inputs: list[str], out: str) -> str:
    return w.node(type(spec).__name__, inputs[:1], out, info.output_shape, axis=spec.axis)


@exports(Clip)
def _export_clip(w: Writer, spec: Clip, info: LayerInfo, weights: Weights, prefix: str,
                 inputs: list[str], out: str) -> str:
    low, high = spec.bounds
    operands = [inputs[0],
                "" if low is None else _scalar(w, f"{prefix}min", low),
                "" if high is None else _scalar(w, f"{prefix}max", high)]
    while operands[-1] == "":
        operands.pop()
    return w.node("Clip", operands, out, info.output_shape)


@exports(SiLU)
def _export_silu(w: Writer, spec: SiLU, info: LayerInfo, weights: Weights, prefix: str,
                 inputs: list[str], out: str) -> str:
    gate = w.node("Sigmoid", inputs[:1], f"{out}/sigmoid", info.output_shape)
    return w.node("Mul", [inputs[0], gate], out, info.output_shape)


@exports(PReLU)
def _export_prelu(w: Writer, spec: PReLU, info: LayerInfo, weights: Weights, prefix: str,
                  inputs: list[str], out: str) -> str:
    slope = w.weight(f"{prefix}slope", np.asarray(weights["slope"], np.float32))
    return w.node("PRelu", [inputs[0], slope], out, info.output_shape)


@exports(GELU)
def _export_gelu(w: Writer, spec: GELU, info: LayerInfo, weights: Weights, prefix: str,
                 inputs: list[str], out: str) -> str:
    shape, x = info.output_shape, inputs[0]
    if w.opset >= GELU_OPSET:
        return w.node("Gelu", [x], out, shape, approximate=spec.approximate)
    if spec.approximate == "none":
        # 0.5 * x * (1 + erf(x / sqrt 2)), as torch.onnx writes it.
        scaled = w.node("Div", [x, _scalar(w, f"{prefix}sqrt2", math.sqrt(2.0))],
                        f"{out}/div", shape)
        inner = w.node("Erf", [scaled], f"{out}/erf", shape)
    else:
        # 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3))).
        cube = w.node("Mul", [w.node("Mul", [x, x], f"{out}/square", shape), x],
                      f"{out}/cube", shape)
        term = w.node("Mul", [cube, _scalar(w, f"{prefix}coefficient", 0.044715)],
                      f"{out}/term", shape)
        total = w.node("Add", [x, term], f"{out}/sum", shape)
        scaled = w.node("Mul", [total, _scalar(w, f"{prefix}sqrt_2_over_pi",
                                               math.sqrt(2.0 / math.pi))], f"{out}/scaled", shape)
        inner = w.node("Tanh", [scaled], f"{out}/tanh", shape)
    plus = w.node("Add", [inner, _scalar(w, f"{prefix}one", 1.0)], f"{out}/add", shape)
    times = w.node("Mul", [x, plus], f"{out}/mul", shape)
    return w.node("Mul", [times, _scalar(w, f"{prefix}half", 0.5)], out, shape)


@exports(LRN)
def _export_lrn(w: Writer, spec: LRN, info: LayerInfo, weights: Weights, prefix: str,
                inputs: list[str], out: str) -> str:
    return w.node("LRN", inputs[:1], out, info.output_shape, size=spec.size, alpha=spec.alpha,
                  beta=spec.beta, bias=spec.bias)


@exports(InstanceNorm, BatchNorm)
def _export_norm(w: Writer, spec: InstanceNorm | BatchNorm, info: LayerInfo, weights: Weights,
                 prefix: str, inputs: list[str], out: str) -> str:
    batch = isinstance(spec, BatchNorm)
    keys = ("scale", "bias", "mean", "var") if batch else ("scale", "bias")
    operands = [inputs[0]] + [w.weight(f"{prefix}{key}", np.asarray(weights[key], np.float32))
                              for key in keys]
    op = "BatchNormalization" if batch else "InstanceNormalization"
    return w.node(op, operands, out, info.output_shape, epsilon=spec.epsilon)


# --- import -----------------------------------------------------------------------------------

def _imported(r: Reader, node: onnx.NodeProto, spec: Any,
              weights: Mapping[str, np.ndarray] | None = None) -> Imported:
    return Imported(spec, dict(weights or {}), inputs=runtime_inputs(r, node))


def _constant(r: Reader, node: onnx.NodeProto, index: int, what: str) -> np.ndarray:
    """Input `index` of the node as a float32 array; r.fail when it is computed at run time."""
    value = r.constant(node.input[index])
    if value is None:
        raise r.fail(node, f"its {what} (input {index}, {shown(node.input[index])}) is computed "
                           f"at run time; ConvScope stores it as a weight, so it must be a "
                           f"constant")
    return np.asarray(value, np.float32)


@imports("Relu", "Sigmoid", "Tanh", "HardSwish", *UNARY_OPS)
def _import_plain(r: Reader, node: onnx.NodeProto) -> Imported:
    kinds = {"Relu": ReLU, "Sigmoid": Sigmoid, "Tanh": Tanh, "HardSwish": HardSwish}
    op = node.op_type
    return _imported(r, node, kinds[op]() if op in kinds else Unary(op=op))


@imports("LeakyRelu", "Elu", "HardSigmoid")
def _import_alpha(r: Reader, node: onnx.NodeProto) -> Imported:
    attrs = r.attrs(node)
    if node.op_type == "HardSigmoid":
        spec: Any = HardSigmoid(alpha=_decimal(attrs.get("alpha", 0.2)),
                                beta=_decimal(attrs.get("beta", 0.5)))
    elif node.op_type == "LeakyRelu":
        spec = LeakyReLU(alpha=_decimal(attrs.get("alpha", 0.01)))
    else:
        spec = ELU(alpha=_decimal(attrs.get("alpha", 1.0)))
    return _imported(r, node, spec)


@imports("Softmax", "LogSoftmax")
def _import_softmax(r: Reader, node: onnx.NodeProto) -> Imported:
    kind = Softmax if node.op_type == "Softmax" else LogSoftmax
    attrs = r.attrs(node)
    if r.opset >= 13:
        return _imported(r, node, kind(axis=int(attrs.get("axis", -1))))
    # Before opset 13 the input is flattened to 2-D at `axis` and normalised over the tail:
    # one axis only when the rest of the tail is of size 1.
    shape = r.shape(node.input[0])
    rank = len(shape)
    given = int(attrs.get("axis", 1))
    axis = given + rank if given < 0 else given
    if not 0 <= axis < rank:
        raise r.fail(node, f"its axis {given} is outside the input's {rank} axes")
    wide = [a for a in range(axis, rank) if shape[a] != 1]
    if len(wide) > 1:
        raise r.fail(node, f"at opset {r.opset} it normalises over axes {axis} to {rank - 1} of "
                           f"shape {tuple(shape)} flattened together; ConvScope's "
                           f"{node.op_type} normalises along one axis; re-export the model at "
                           f"opset 13 or later, or flatten the tensor before it")
    axis = wide[0] if wide else axis
    if axis == 0:
        raise r.fail(node, "it normalises over the batch axis, which ConvScope never mixes")
    return _imported(r, node, kind(axis=axis))


def _bound(value: float | None) -> float | None:
    """A Clip bound, None where it does not clip (absent, infinite or float32's extreme)."""
    if value is None or not abs(value) < _FLOAT32_MAX:
        return None
    return _decimal(value)


@imports("Clip")
def _import_clip(r: Reader, node: onnx.NodeProto) -> Imported:
    if r.opset < 11:
        attrs = r.attrs(node)
        low, high = attrs.get("min"), attrs.get("max")
    else:
        low, high = (
            None if len(node.input) <= i or not node.input[i]
            else _constant(r, node, i, what) for i, what in ((1, "minimum"), (2, "maximum")))
        for value, what in ((low, "minimum"), (high, "maximum")):
            if value is not None and value.size != 1:
                raise r.fail(node, f"its {what} has shape {value.shape}; Clip takes one number")
        low, high = (None if v is None else float(v.reshape(())) for v in (low, high))
    low, high = _bound(low), _bound(high)
    spec = Clip(has_min=low is not None, min=0.0 if low is None else low,
                has_max=high is not None, max=6.0 if high is None else high)
    if low is not None and high is not None and low > high:
        raise r.fail(node, f"its minimum {low:g} is above its maximum {high:g}")
    return _imported(r, node, spec)


@imports("PRelu")
def _import_prelu(r: Reader, node: onnx.NodeProto) -> Imported:
    slope = _constant(r, node, 1, "slope")
    sample = tuple(r.shape(node.input[0])[1:])
    per_channel = (sample[0],) + (1,) * (len(sample) - 1) if sample else None
    shape = None if slope.shape == per_channel else tuple(int(d) for d in slope.shape)
    return _imported(r, node, PReLU(slope_shape=shape), {"slope": slope})


@imports("Gelu")
def _import_gelu(r: Reader, node: onnx.NodeProto) -> Imported:
    return _imported(r, node, GELU(approximate=r.attrs(node).get("approximate", "none")))


@imports("LRN")
def _import_lrn(r: Reader, node: onnx.NodeProto) -> Imported:
    attrs = r.attrs(node)
    if "size" not in attrs:
        raise r.fail(node, "it has no size attribute, which LRN requires")
    spec = LRN(size=int(attrs["size"]), alpha=_decimal(attrs.get("alpha", 1e-4)),
               beta=_decimal(attrs.get("beta", 0.75)), bias=_decimal(attrs.get("bias", 1.0)))
    return _imported(r, node, spec)


@imports("InstanceNormalization")
def _import_instance_norm(r: Reader, node: onnx.NodeProto) -> Imported:
    weights = {key: _constant(r, node, i, key) for i, key in ((1, "scale"), (2, "bias"))}
    spec = InstanceNorm(epsilon=_decimal(r.attrs(node).get("epsilon", 1e-5)))
    return _imported(r, node, spec, weights)


@imports("BatchNormalization")
def _import_batch_norm(r: Reader, node: onnx.NodeProto) -> Imported:
    attrs = r.attrs(node)
    if attrs.get("training_mode", 0):
        raise r.fail(node, "it runs in training mode (training_mode=1), normalising with each "
                           "batch's own statistics; export the model in inference mode")
    if "is_test" in attrs and not attrs["is_test"]:
        raise r.fail(node, "it runs in training mode (is_test=0); export the model in inference "
                           "mode")
    if attrs.get("spatial", 1) == 0:
        raise r.fail(node, "it keeps statistics per position (spatial=0); ConvScope's BatchNorm "
                           "keeps one per channel")
    if any(node.output[1:]):
        raise r.fail(node, "it also outputs running statistics, which only training computes; "
                           "export the model in inference mode")
    weights = {key: _constant(r, node, i + 1, key)
               for i, key in enumerate(("scale", "bias", "mean", "var"))}
    channels = {w.shape for w in weights.values()}
    if len(channels) != 1 or len(next(iter(channels))) != 1:
        raise r.fail(node, "its scale, bias, mean and var are not one value per channel")
    spec = BatchNorm(epsilon=_decimal(attrs.get("epsilon", 1e-5)))
    return _imported(r, node, spec, weights)
