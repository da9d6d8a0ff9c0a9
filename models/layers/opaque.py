"""Opaque: an imported ONNX node outside ConvScope's vocabulary, kept as it was written and
computed by onnxruntime (engine.onnx.opaque), never by the NumPy engine.

The spec holds the node itself (serialized, attributes and all) and what shape inference said of
it when it was imported: the sample shapes (no batch axis) of its runtime inputs and of its one
used output. ConvScope cannot recompute an operator it does not know, so an opaque node works
only on the input shapes it was imported with; other shapes are a ConfigError that says so.
Constant float inputs are its weights, keyed "in<i>" by their position among the node's inputs,
so project files save them like any layer's weights.

Receptive field: an estimate. Every output position is taken to see every input position (one
step spanning the whole input, as Flatten), since the operator's windows are unknown.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from models.errors import ConfigError
from models.geometry import RFStep
from models.layers.base import LayerInfo, LayerSpec, Shape, describe_shape, register, set_field


def _shape(value: Any, name: str) -> Shape:
    if not isinstance(value, (list, tuple)) or any(
            isinstance(d, bool) or not isinstance(d, int) or d < 0 for d in value):
        raise ConfigError(f"{name} must be a list of sizes, got {value!r}", field=name)
    return tuple(value)


@register
@dataclass(frozen=True)
class Opaque(LayerSpec):
    """An ONNX node ConvScope has no layer for, run by onnxruntime.

    op_type, domain: the operator. node: base64 of a serialized onnx GraphProto holding the
    node (runtime inputs renamed x0, x1, ...; constant inputs in<i>; the used output y), typed
    graph inputs for the runtime inputs, value_info giving the element type of each weight
    in<i>, and its non-float constant inputs (axes, counts) as initializers. opsets: the
    (domain, version) pairs the node is read at. input_shapes/output_shape: sample shapes.
    constants: (key, shape) of each float constant input, stored as the weight `key`.
    reason: why the importer left it opaque (no rule for the operator, or the rule's refusal).
    """
    category = "Imported"
    description = "An imported ONNX operator ConvScope has no layer for; onnxruntime computes it."
    engine = "onnxruntime"
    min_inputs = 1
    max_inputs = None

    op_type: str = ""
    domain: str = ""
    node: str = ""
    opsets: tuple[tuple[str, int], ...] = ()
    input_shapes: tuple[Shape, ...] = ()
    output_shape: Shape = ()
    constants: tuple[tuple[str, Shape], ...] = ()
    reason: str = ""

    def __post_init__(self) -> None:
        for name in ("op_type", "domain", "node", "reason"):
            if not isinstance(getattr(self, name), str):
                raise ConfigError(f"{name} must be text, got {getattr(self, name)!r}", field=name)
        try:
            set_field(self, "opsets", tuple((str(d), int(v)) for d, v in self.opsets))
            set_field(self, "constants", tuple((str(k), _shape(s, "constants"))
                                               for k, s in self.constants))
        except (TypeError, ValueError):
            raise ConfigError(f"opsets and constants must be pairs, got {self.opsets!r} and "
                              f"{self.constants!r}", field="constants") from None
        set_field(self, "input_shapes", tuple(_shape(s, "input_shapes")
                                              for s in self.input_shapes))
        set_field(self, "output_shape", _shape(self.output_shape, "output_shape"))

    @property
    def type_name(self) -> str:
        return self.op_type if not self.domain else f"{self.domain}.{self.op_type}"

    @property
    def short_name(self) -> str:
        return (self.op_type or "opaque").lower()

    def analyse_inputs(self, in_shapes: tuple[Shape, ...]) -> LayerInfo:
        if tuple(in_shapes) != self.input_shapes:
            had = " and ".join(describe_shape(s) for s in self.input_shapes) or "none"
            got = " and ".join(describe_shape(s) for s in in_shapes)
            raise ConfigError(f"the imported ONNX operator {self.type_name} was read for input "
                              f"{had} but now gets {got}; ConvScope cannot work out what an "
                              f"operator it does not know gives for other sizes, so restore the "
                              f"network's input size", field="inputs")
        first = in_shapes[0]
        steps = (tuple(RFStep(w, w) for w in first[1:]),) if len(first) > 1 else ()
        return LayerInfo(output_shape=self.output_shape, param_shapes=dict(self.constants),
                         rf_steps=steps)

    def analyse(self, in_shape: Shape) -> LayerInfo:
        return self.analyse_inputs((in_shape,))

    def summary(self) -> str:
        return "onnxruntime"


def back_opaque(spec: Opaque, info: LayerInfo, in_shape: Shape, mask: np.ndarray) -> np.ndarray:
    """The receptive window through an opaque node (an estimate): every input position when any
    output position is reached."""
    return np.full(in_shape[1:], bool(mask.any()))


BACK_OPAQUE = {Opaque: back_opaque}
