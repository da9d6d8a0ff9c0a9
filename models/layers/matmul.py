"""Matrix products with a stored right operand: ONNX Gemm (every attribute) and MatMul."""
from __future__ import annotations

import math
from dataclasses import dataclass

from models.errors import ConfigError
from models.fields import param
from models.geometry import RFStep
from models.layers.base import (LayerInfo, LayerSpec, Shape, as_bool, as_float, as_int,
                                describe_shape, register)
from models.layers.shape_ops import as_int_tuple


@register
@dataclass(frozen=True)
class Gemm(LayerSpec):
    """ONNX Gemm on a flat input: Y = alpha * X @ op(W) + beta * B.

    W ("W") is stored as the file holds it: (K, units), or (units, K) with transB. B ("B", when
    bias_shape is set) broadcasts to (N, units): () scalar, (units,), (1, units), or (R, units)
    with R rows, one per sample (then the model runs on batches of R only, as in ONNX).
    transA = 1 would contract the batch axis, which a layer never touches: analyse refuses it.
    """
    category = "Structure"
    description = "General matrix product with scale factors and an optional bias (ONNX Gemm)."

    units: int = param(10, "Units", "Output features (M).", minimum=1, maximum=100000)
    alpha: float = param(1.0, "Alpha", "Scales the product.", step=0.1)
    beta: float = param(1.0, "Beta", "Scales the bias.", step=0.1)
    transA: bool = param(False, "Transpose input", "Use the input transposed (contracts the batch;"
                         " not supported).")
    transB: bool = param(True, "Transposed weights", "W is stored (units, K) as PyTorch Linear "
                         "does; off: (K, units).")
    bias_shape: tuple[int, ...] | None = param((10,), "Bias shape", "The stored bias's shape "
                                               "(none: no bias).")

    def __post_init__(self) -> None:
        as_int(self, "units")
        as_float(self, "alpha")
        as_float(self, "beta")
        as_bool(self, "transA")
        as_bool(self, "transB")
        if self.bias_shape is not None:
            as_int_tuple(self, "bias_shape", minimum=1)

    def analyse(self, in_shape: Shape) -> LayerInfo:
        if self.transA:
            raise ConfigError("transA = 1 multiplies across the batch (the input's first axis "
                              "would be contracted); ConvScope keeps samples apart: store the "
                              "operands so that transA is 0", field="transA")
        if len(in_shape) != 1:
            raise ConfigError(f"Gemm needs a flat input, but gets {describe_shape(in_shape)}; "
                              f"insert a Flatten before it")
        if self.units < 1:
            raise ConfigError(f"units must be at least 1, got {self.units}", field="units")
        k = in_shape[0]
        shapes = {"W": (self.units, k) if self.transB else (k, self.units)}
        if self.bias_shape is not None:
            b = self.bias_shape
            if len(b) > 2 or (b and b[-1] not in (1, self.units)):
                raise ConfigError(f"bias_shape {describe_shape(b)} does not broadcast to (N, "
                                  f"{self.units}); use (), ({self.units},) or (1, {self.units})",
                                  field="bias_shape")
            shapes["B"] = b
        return LayerInfo(output_shape=(self.units,), param_shapes=shapes, macs=k * self.units)

    def summary(self) -> str:
        return f"{self.units} units" + (f" a{self.alpha:g}" if self.alpha != 1 else "")


@register
@dataclass(frozen=True)
class MatMul(LayerSpec):
    """ONNX MatMul with a stored 2-D right operand: (N, ..., K) @ W (K, units) -> (N, ..., units)."""
    category = "Structure"
    description = "Multiplies the last axis by a stored matrix (a linear layer on any rank)."

    units: int = param(10, "Units", "Output size of the last axis (M).", minimum=1, maximum=100000)

    def __post_init__(self) -> None:
        as_int(self, "units")

    def analyse(self, in_shape: Shape) -> LayerInfo:
        if self.units < 1:
            raise ConfigError(f"units must be at least 1, got {self.units}", field="units")
        k = in_shape[-1]
        out = (*in_shape[:-1], self.units)
        # The last axis is mixed (every output reads all of it); the others are kept.
        spatial = in_shape[1:]
        steps = (tuple(RFStep(w, w) if i == len(spatial) - 1 else RFStep(1, 1)
                       for i, w in enumerate(spatial)),) if spatial else ()
        return LayerInfo(output_shape=out, param_shapes={"W": (k, self.units)},
                         macs=math.prod(out) * k, rf_steps=steps)

    def summary(self) -> str:
        return f"{self.units} units"

