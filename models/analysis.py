"""Shape inference over a whole stack: pure arithmetic on specs, never the engine.

For every layer: the output shape, parameters, MACs, receptive field and activation memory, or
the ConfigError that stops it; layers after a failing one wait on it instead of computing garbage.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from models.errors import ConfigError
from models.geometry import RFState
from models.layers import LayerInfo
from models.stack import Stack

BYTES_PER_VALUE = 4  # float32
MAX_LAYER_WEIGHTS = 2**28
"""The most values one layer's weights may hold (1 GiB of float32). A valid layer's weights are
created as soon as it is edited, so a larger one would exhaust memory instead of explaining."""


@dataclass(frozen=True)
class LayerReport:
    """What the arithmetic says of one layer of a stack.

    input_shape/output_shape include the batch axis (output_shape is None unless ok). rf has one
    RFState per spatial axis of the stack's input. macs and activation_bytes cover the batch.
    """
    index: int
    name: str
    type_name: str
    input_shape: tuple[int, ...] | None
    info: LayerInfo | None = None
    error: ConfigError | None = None
    waiting_on: int | None = None
    rf: tuple[RFState, ...] = ()

    @property
    def ok(self) -> bool:
        return self.info is not None

    @property
    def output_shape(self) -> tuple[int, ...] | None:
        if self.info is None or self.input_shape is None:
            return None
        return (self.input_shape[0], *self.info.output_shape)

    @property
    def params(self) -> int:
        return self.info.params if self.info else 0

    @property
    def macs(self) -> int:
        return self.info.macs * self.input_shape[0] if self.info and self.input_shape else 0

    @property
    def activation_bytes(self) -> int:
        shape = self.output_shape
        return math.prod(shape) * BYTES_PER_VALUE if shape else 0

    @property
    def receptive_field(self) -> tuple[int, ...]:
        """Input pixels one output pixel sees, per spatial axis of the input."""
        return tuple(int(math.ceil(state.size)) for state in self.rf)

    @property
    def status(self) -> str:
        """One line for a card: the error, the wait, or empty when the layer works."""
        if self.error is not None:
            return self.error.reason
        if self.waiting_on is not None:
            return f"waiting on layer {self.waiting_on + 1}"
        return ""


@dataclass(frozen=True)
class StackReport:
    input_shape: tuple[int, ...]
    layers: tuple[LayerReport, ...]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.layers)

    @property
    def first_error(self) -> ConfigError | None:
        return next((r.error for r in self.layers if r.error is not None), None)

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.layers[-1].output_shape if self.layers else self.input_shape

    @property
    def total_params(self) -> int:
        return sum(r.params for r in self.layers)

    @property
    def total_macs(self) -> int:
        return sum(r.macs for r in self.layers)

    @property
    def total_activation_bytes(self) -> int:
        return sum(r.activation_bytes for r in self.layers)


def check_weight_count(info: LayerInfo) -> None:
    """Raise ConfigError when the layer's weights exceed MAX_LAYER_WEIGHTS values."""
    count = sum(math.prod(shape) for shape in info.weight_shapes.values())
    if count > MAX_LAYER_WEIGHTS:
        raise ConfigError(f"its weights would hold {count:,} values "
                          f"({count * BYTES_PER_VALUE / 2**30:.1f} GiB), more than the "
                          f"{MAX_LAYER_WEIGHTS * BYTES_PER_VALUE // 2**30} GiB one layer may hold; "
                          f"use fewer units or filters, or give it a smaller input (pool before "
                          f"a Flatten)")


def analyse(stack: Stack) -> StackReport:
    """The report for every layer of the stack (never raises for layer settings)."""
    shape = stack.input.sample_shape
    batch = stack.input.batch
    rf = tuple(RFState() for _ in stack.input.spatial)
    reports: list[LayerReport] = []
    failed: int | None = None
    for index, layer in enumerate(stack.layers):
        spec = layer.spec
        if failed is not None:
            reports.append(LayerReport(index, layer.name, spec.type_name, None, waiting_on=failed))
            continue
        in_shape = (batch, *shape)
        try:
            info = spec.analyse(shape)
            check_weight_count(info)
        except ConfigError as err:
            failed = index
            reports.append(LayerReport(index, layer.name, spec.type_name, in_shape,
                                       error=err.at(index, layer.name, spec.type_name)))
            continue
        for steps in info.rf_steps:
            rf = tuple(state.then(step) for state, step in zip(rf, steps))
        reports.append(LayerReport(index, layer.name, spec.type_name, in_shape, info=info, rf=rf))
        shape = info.output_shape
    return StackReport(stack.input.shape, tuple(reports))
