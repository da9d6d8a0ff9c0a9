"""The Residual and Gated layers of projects written before networks were graphs, expanded into
the grouped subgraphs that templates build, with the same weights and the same numbers.

Until project version 2, a residual block was one layer holding a chain (`body`) and a shortcut,
and a gated convolution (GLU) one layer holding two convolutions. Such a layer now opens as a
group named after it (its parent group kept above it) holding:
- Residual: the body's layers in order, for `shortcut: projection` a 1x1 convolution without bias
  whose stride maps the input's size onto the body's, and an Add of the body and the shortcut;
  a Residual or Gated inside a body becomes a group inside that group ("res1/res2").
- Gated: what models.templates.gated_block builds: one convolution with both weight sets stacked
  (a then b, as the old layer computed them in one pass), the two channel halves, a Sigmoid on the
  second, their Mul, and an Add of the input when `residual`.
Every layer or network output that named the old layer names the group's output node instead.
The arithmetic is the old kernels' own, operation for operation, so outputs are identical bit for
bit. Weights keep their values (a.W and b.W become the halves of the stacked kernel); a weight the
file lacked gets the default the old layer would have drawn, from the old name and key.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from models.analysis import check_arity
from models.errors import ConfigError, display_name
from models.layers import Add, Conv, LayerInfo, LayerSpec, ReLU
from models.layers.base import Shape
from models.stack import INPUT, InputSpec, Layer, frozen_array
from models.templates import BlockBuilder, gated_block
from models.weights import default_weight, rng_for

LEGACY_KINDS = ("Residual", "Gated")
"""The "type" of the layer entries this module expands."""

_GATED_DEFAULTS: dict[str, Any] = dict(rank=2, out_channels=16, kernel_size=3, stride=1,
                                       padding="same", pads=0, dilation=1, bias=True,
                                       residual=False)
_RESIDUAL_DEFAULTS: dict[str, Any] = dict(
    body=[Conv(out_channels=16).to_dict(), ReLU().to_dict(), Conv(out_channels=16).to_dict()],
    shortcut="identity")
_STEMS = {"Residual": "res", "Gated": "glu"}

Maker = Callable[[Shape], np.ndarray]


@dataclass(frozen=True)
class LegacyLayer:
    """A Residual or Gated entry of a project file, as read: its name, spec (JSON), the names it
    reads (None: the previous layer), its group and its weights by the old keys ("a.W",
    "body.0.W", "shortcut.W")."""
    name: str
    raw_spec: Mapping[str, Any]
    inputs: tuple[str, ...] | None
    group: str
    weights: Mapping[str, np.ndarray]


def is_legacy(raw_spec: Mapping[str, Any]) -> bool:
    """Whether a layer entry's spec is one of the old block kinds."""
    return raw_spec.get("type") in LEGACY_KINDS


def legacy_gated_weight(seed: int, name: str, key: str, shape: Shape) -> np.ndarray:
    """The stacked weight `key` (of shape `shape`) that a gated layer named `name` drew by
    default: its a.<role> then its b.<role>, each half drawn as models.weights draws every
    default. key: "W" or "B", or for a gated layer inside a residual one its place in that
    layer's weights ("body.0.W")."""
    head, _, role = key.rpartition(".")
    prefix = f"{head}." if head else ""
    half = (shape[0] // 2, *shape[1:])
    return np.concatenate([_drawn(seed, name, f"{prefix}{ab}.{role}", half) for ab in "ab"])


def _drawn(seed: int, name: str, key: str, shape: Shape) -> np.ndarray:
    """The default of weight `key` of the old layer `name`."""
    return default_weight(key, shape, rng_for(seed, name, key))


def expand(input_spec: InputSpec, seed: int, items: list[Layer | LegacyLayer]
           ) -> tuple[list[Layer], dict[str, str]]:
    """The network's layers with every LegacyLayer expanded (see the module docstring), and the
    name of the node that now holds each old layer's output, by old name.

    Explicit inputs naming an old layer are renamed here; the caller renames network outputs.
    Raises ConfigError for a block entry that cannot be read (unknown settings, an empty body,
    a weight no part of the block has), placed on the layer; shapes that cannot work are kept as
    they are, as the error of the node they land on.
    """
    expansion = _Expansion(input_spec, seed, items)
    for index, item in enumerate(items):
        if isinstance(item, Layer):
            expansion.append(item)
            continue
        try:
            expansion.top_level(item)
        except ConfigError as err:
            raise err.at(index, item.name, item.raw_spec.get("type", "")) from None
    return expansion.layers, expansion.renamed


class _Expansion:
    """The layers built so far, each node's sample shape (None: unknown, as for an invalid
    layer), and the names and group names in use."""

    def __init__(self, input_spec: InputSpec, seed: int, items: list[Layer | LegacyLayer]) -> None:
        self.seed = seed
        self.layers: list[Layer] = []
        self.renamed: dict[str, str] = {}
        self.shapes: dict[str, Shape | None] = {INPUT: input_spec.sample_shape}
        self.taken = {item.name for item in items}
        self.segments = {part for item in items for part in item.group.split("/") if part}
        # The old blocks' names become their groups' names: blocks nested in them avoid them.
        self.reserved = {item.name for item in items if isinstance(item, LegacyLayer)}

    # -- layers of the network

    def append(self, layer: Layer, weights: Mapping[str, np.ndarray] | None = None,
               defaults: Callable[[str], Maker] | None = None) -> str:
        """Add a finished layer: renamed reads, its shape tracked; with `weights`, those, and
        its other weights drawn by `defaults` (key -> how to draw it) once its shapes are known."""
        if layer.inputs is not None:
            layer = layer.replace(inputs=tuple(self.renamed.get(n, n) for n in layer.inputs))
        reads = layer.inputs if layer.inputs is not None else (
            self.layers[-1].name if self.layers else INPUT,)
        info = self._info(layer.spec, reads)
        self.shapes[layer.name] = tuple(info.output_shape) if info is not None else None
        if weights is not None:
            merged = dict(weights)
            if info is not None:
                for key, shape in info.weight_shapes.items():
                    if key not in merged and defaults is not None:
                        merged[key] = defaults(key)(shape)
            layer = layer.replace(weights={k: frozen_array(v) for k, v in merged.items()})
        self.layers.append(layer)
        return layer.name

    def _info(self, spec: LayerSpec, reads: tuple[str, ...]) -> LayerInfo | None:
        shapes = [self.shapes.get(name) for name in reads]
        if any(shape is None for shape in shapes):
            return None
        try:
            check_arity(spec, len(shapes))
            return spec.analyse_inputs(tuple(shapes))  # type: ignore[arg-type]
        except ConfigError:
            return None  # the network's analysis reports it on the node

    def _group(self, parent: str, name: str | None = None, stem: str = "") -> str:
        """A group path under `parent` whose last segment no other group uses: the old block's
        name (then name_2, name_3... if taken), or for a block nested in another, the first
        free <stem><n> as templates name theirs ("res1")."""
        if name is not None:
            wanted = name.replace("/", "_") or stem
            segment, n = wanted, 1
            while segment in self.segments:
                n += 1
                segment = f"{wanted}_{n}"
        else:
            n = 1
            while f"{stem}{n}" in self.segments or f"{stem}{n}" in self.reserved:
                n += 1
            segment = f"{stem}{n}"
        self.segments.add(segment)
        return f"{parent}/{segment}" if parent else segment

    # -- the old blocks

    def top_level(self, item: LegacyLayer) -> None:
        if item.inputs is not None and len(item.inputs) != 1:
            raise ConfigError(f"a {item.raw_spec.get('type')} layer reads one input, but the file "
                              f"names {len(item.inputs)}; keep one", field="inputs")
        if item.inputs is not None:
            source = self.renamed.get(item.inputs[0], item.inputs[0])
        else:
            source = self.layers[-1].name if self.layers else INPUT
        group = self._group(item.group, item.name, _STEMS[item.raw_spec["type"]])
        used: set[str] = set()
        out = self._block(item.raw_spec, source, group, item.weights, "", item.name, used)
        stray = sorted(set(item.weights) - used)
        if stray:
            raise ConfigError(f"the file holds a weight {display_name(stray[0])} that no part of "
                              f"this {item.raw_spec.get('type')} has; the file is damaged",
                              field="weights")
        self.renamed[item.name] = out

    def _block(self, raw: Mapping[str, Any], source: str, group: str,
               weights: Mapping[str, np.ndarray], prefix: str, top: str, used: set[str]) -> str:
        """Expand one old block reading `source` into `group`; returns its output node.
        prefix: its keys' place in the top layer's weights ("" or "body.1."); used collects the
        keys consumed."""
        kind = raw.get("type")
        allowed = _GATED_DEFAULTS if kind == "Gated" else _RESIDUAL_DEFAULTS
        unknown = sorted(set(raw) - set(allowed) - {"type"})
        if unknown:
            raise ConfigError(f"{kind} has no setting {unknown[0]!r}", field=unknown[0])
        fields = {**allowed, **{k: v for k, v in raw.items() if k != "type"}}
        if kind == "Gated":
            return self._gated(fields, source, group, weights, prefix, top, used)
        return self._residual(fields, source, group, weights, prefix, top, used)

    def _residual(self, fields: dict[str, Any], source: str, group: str,
                  weights: Mapping[str, np.ndarray], prefix: str, top: str, used: set[str]) -> str:
        body, shortcut = fields["body"], fields["shortcut"]
        if not isinstance(body, list) or not body:
            raise ConfigError("a residual block needs a body of at least one layer", field="body")
        if shortcut not in ("identity", "projection"):
            raise ConfigError(f"shortcut must be one of identity, projection; got {shortcut!r}",
                              field="shortcut")
        x = source
        for i, entry in enumerate(body):
            inner = f"body.{i}."
            if not isinstance(entry, Mapping):
                raise ConfigError("a layer entry must be an object with a \"type\" string",
                                  field="body")
            if is_legacy(entry):
                x = self._block(entry, x, self._group(group, stem=_STEMS[entry["type"]]),
                                weights, prefix + inner, top, used)
                continue
            try:
                spec = LayerSpec.from_dict(entry)
            except ConfigError as err:
                raise err.inside(f"body.{i}", f"in the body's layer {i + 1}") from None
            x = self._node(spec, (x,), group, weights, prefix + inner, top, used)
        if shortcut == "projection":
            x_shape, in_shape = self.shapes.get(x), self.shapes.get(source)
            stored = weights.get(f"{prefix}shortcut.W")
            rank, channels, strides = _projection(in_shape, x_shape, stored)
            projection = Conv(rank=rank, out_channels=channels, kernel_size=1, stride=strides,
                              padding="valid", bias=False)
            shortcut_name = self._node(projection, (source,), group, weights,
                                       prefix + "shortcut.", top, used)
        else:
            shortcut_name = source
        return self._node(Add(), (x, shortcut_name), group, weights, prefix + "add.", top, used)

    def _node(self, spec: LayerSpec, reads: tuple[str, ...], group: str,
              weights: Mapping[str, np.ndarray], prefix: str, top: str, used: set[str]) -> str:
        """A new node whose weights are the top layer's `prefix` keys."""
        name = BlockBuilder(reads[0], group, self.taken).add(spec, *reads)
        mine = {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}
        used.update(prefix + k for k in mine)
        return self.append(Layer(name, spec, inputs=reads, group=group), mine,
                           lambda key: lambda shape: _drawn(self.seed, top, prefix + key, shape))

    def _gated(self, fields: dict[str, Any], source: str, group: str,
               weights: Mapping[str, np.ndarray], prefix: str, top: str, used: set[str]) -> str:
        residual = fields.pop("residual")
        if not isinstance(residual, (bool, int)) or residual not in (0, 1):
            raise ConfigError(f"residual must be true or false, got {residual!r}",
                              field="residual")
        # Conv normalises and checks the window settings as the old layer did.
        probe = Conv(**fields)
        block = BlockBuilder(source, group, self.taken)
        gated_block(block, source, residual=bool(residual),
                    **{f.name: getattr(probe, f.name) for f in dataclasses.fields(Conv)
                       if f.name != "groups"})
        stacked = {}
        for role in ("W", "B"):
            a, b = weights.get(f"{prefix}a.{role}"), weights.get(f"{prefix}b.{role}")
            used.update(k for k in (f"{prefix}a.{role}", f"{prefix}b.{role}") if k in weights)
            if a is not None and b is not None and a.shape != b.shape:
                raise ConfigError(f"its weights a.{role} {tuple(a.shape)} and b.{role} "
                                  f"{tuple(b.shape)} differ in shape, but a gated layer's two "
                                  f"convolutions are alike; the file is damaged", field="weights")
            if a is not None or b is not None:
                # One half stored: the other is its default, of the same shape.
                half = (a if a is not None else b).shape  # type: ignore[union-attr]
                a = a if a is not None else _drawn(self.seed, top, f"{prefix}a.{role}", half)
                b = b if b is not None else _drawn(self.seed, top, f"{prefix}b.{role}", half)
                stacked[role] = np.concatenate([a, b])
        conv, *rest = block.layers
        self.append(conv, stacked, lambda key: lambda shape: legacy_gated_weight(
            self.seed, top, f"{prefix}{key}", shape))
        for layer in rest:
            self.append(layer)
        return block.layers[-1].name


def _projection(in_shape: Shape | None, out_shape: Shape | None,
                stored: np.ndarray | None) -> tuple[int, int, tuple[int, ...]]:
    """(rank, out channels, strides) of the 1x1 projection mapping in_shape onto out_shape: the
    strides the old block derived, ceil(input / body output) per axis. When a shape is unknown
    (the body cannot work yet), the stored weight's, or one channel and stride 1: the Add shows
    the mismatch until the body is fixed."""
    if in_shape is not None and out_shape is not None and len(in_shape) == len(out_shape) > 1:
        strides = tuple(max(1, -(-have // want)) for have, want in zip(in_shape[1:], out_shape[1:]))
        return len(in_shape) - 1, out_shape[0], strides
    rank = stored.ndim - 2 if stored is not None and stored.ndim > 2 else (
        len(in_shape) - 1 if in_shape is not None and len(in_shape) > 1 else 2)
    channels = stored.shape[0] if stored is not None and stored.ndim > 2 else (
        out_shape[0] if out_shape is not None else 1)
    return rank, channels, (1,) * rank
