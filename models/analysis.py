"""Shape inference over a whole network: pure arithmetic on specs, never the engine.

For every layer: the output shape, parameters, MACs, receptive field and activation memory, or
the ConfigError that stops it; layers downstream of a failing one wait on it instead of computing
garbage. The receptive field of a layer that reads several branches is the union of theirs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from models.errors import ConfigError
from models.geometry import RFState
from models.layers import LayerInfo, LayerSpec
from models.pacing import pace
from models.stack import Stack

BYTES_PER_VALUE = 4  # float32
MAX_LAYER_WEIGHTS = 2**28
"""The most values one layer's weights may hold (1 GiB of float32). A valid layer's weights are
created as soon as it is edited, so a larger one would exhaust memory instead of explaining."""


@dataclass(frozen=True)
class LayerReport:
    """What the arithmetic says of one layer of a network.

    input_shape/output_shape include the batch axis (output_shape is None unless ok);
    input_shape is the first input's, input_shapes all of them. sources: the layers it reads
    (-1: the network's input). rf has one RFState per spatial axis of the network's input.
    macs and activation_bytes cover the batch.
    """
    index: int
    name: str
    type_name: str
    input_shape: tuple[int, ...] | None
    info: LayerInfo | None = None
    error: ConfigError | None = None
    waiting_on: int | None = None
    rf: tuple[RFState, ...] = ()
    sources: tuple[int, ...] = ()
    input_shapes: tuple[tuple[int, ...], ...] = ()
    input_names: tuple[str, ...] = ()
    group: str = ""
    engine: str = "numpy"

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
    """Every layer's report, in the network's order; outputs: the output layers' indices."""
    input_shape: tuple[int, ...]
    layers: tuple[LayerReport, ...]
    outputs: tuple[int, ...] = ()

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.layers)

    @property
    def first_error(self) -> ConfigError | None:
        return next((r.error for r in self.layers if r.error is not None), None)

    @property
    def output_shape(self) -> tuple[int, ...] | None:
        """The first output's shape (the input's for an empty network)."""
        if not self.layers:
            return self.input_shape
        return self.layers[self.outputs[0] if self.outputs else -1].output_shape

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
    """The report for every layer of the network (never raises for layer settings)."""
    batch = stack.input.batch
    input_rf = tuple(RFState() for _ in stack.input.spatial)
    reports: list[LayerReport] = []
    for index, layer in enumerate(stack.layers):
        pace()
        spec = layer.spec
        sources = stack.sources[index]
        where = dict(sources=sources, input_names=stack.input_names(index), group=layer.group,
                     engine=spec.engine)
        blocked = [reports[j] for j in sources if j >= 0 and not reports[j].ok]
        if blocked:
            first = min(r.index if r.error is not None else r.waiting_on for r in blocked)
            reports.append(LayerReport(index, layer.name, spec.type_name, None, waiting_on=first,
                                       **where))
            continue
        shapes = tuple(stack.input.sample_shape if j < 0 else reports[j].info.output_shape
                       for j in sources)
        full = tuple((batch, *shape) for shape in shapes)
        try:
            check_arity(spec, len(shapes))
            info = spec.analyse_inputs(shapes)
            check_weight_count(info)
        except ConfigError as err:
            reports.append(LayerReport(index, layer.name, spec.type_name, full[0] if full else None,
                                       error=err.at(index, layer.name, spec.type_name),
                                       input_shapes=full, **where))
            continue
        rf = union_rf([input_rf if j < 0 else reports[j].rf for j in sources])
        for steps in info.rf_steps:
            rf = tuple(state.then(step) for state, step in zip(rf, steps))
        reports.append(LayerReport(index, layer.name, spec.type_name, full[0], info=info, rf=rf,
                                   input_shapes=full, **where))
    return StackReport(stack.input.shape, tuple(reports), stack.output_indices)


def check_arity(spec: LayerSpec, count: int) -> None:
    """Raise ConfigError, saying how many it needs, unless the spec reads `count` inputs."""
    low, high = spec.min_inputs, spec.max_inputs
    if low <= count and (high is None or count <= high):
        return
    need = f"{low}" if low == high else f"at least {low}" if high is None else f"{low} to {high}"
    fix = "connect another input" if count < low else "remove an input, or merge them first"
    raise ConfigError(f"{spec.type_name} reads {need} input{'s' if need != '1' else ''}, but "
                      f"{count} {'are' if count != 1 else 'is'} connected; {fix}", field="inputs")


def union_rf(states: list[tuple[RFState, ...]]) -> tuple[RFState, ...]:
    """The receptive field of a pixel that reads every branch: the union of their extents."""
    if len(states) == 1:
        return states[0]
    ranks = {len(s) for s in states}
    if len(ranks) != 1:  # branches of different input ranks cannot happen on one input
        return states[0]
    return tuple(RFState.union(axis) for axis in zip(*states))
