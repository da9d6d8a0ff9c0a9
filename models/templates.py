"""Templates: the one way to express a branch. Each inserts a grouped subgraph of ordinary layers
(convolutions, normalisation, activations and a merge) into a network, sized for the shape at the
insertion point: residual (identity and projection), gated (GLU), Inception, squeeze-excitation,
DenseNet's dense layer, a U-Net level and an FPN top-down merge.

`insert_template(stack, name, after, **options)` splices a block in after layer `after`: the block
reads that layer's output, and every layer (and network output) that read it reads the block's
output instead, so a chain stays a chain with the block inside. `remove_group` takes a block out
again. Gated (GLU) takes options (kernel size, dilation, residual...): the text-CNN preset and the
gated layers of older project files (models.legacy_blocks) are built by the same `gated_block`.

Groups: a block's layers share one group named after the template and numbered to be unique in
the network ("res1", "inception2"). When the anchor and the layer after it share a group
("layer1/0"), the block nests inside it ("layer1/0/res1"): it is inserted inside that group. At a
group's edge (or the network's end) it goes to the deepest group the two have in common.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from models.analysis import analyse
from models.errors import ConfigError
from models.layers import (Add, BatchNorm, Concat, Conv, ConvTranspose, GlobalAvgPool, LayerSpec,
                           MaxPool, Mul, PointwiseConv, ReLU, Resize, Sigmoid, Slice)
from models.layers.base import AXIS_NAMES, Shape, describe_shape
from models.stack import INPUT, MAX_SPATIAL_RANK, Layer, Stack

SE_REDUCTION = 4
"""Squeeze-excitation's channel reduction r: the bottleneck has C / r channels (at least 1)."""
GOOGLENET_3A = (64, 96, 128, 16, 32, 32)
"""GoogLeNet's inception (3a) on 192 channels: 1x1; 3x3 reduce, 3x3; 5x5 reduce, 5x5; pool proj."""
GOOGLENET_3A_INPUT = 192


@dataclass(frozen=True)
class Template:
    """A block the palette offers.

    name: the palette label; description: one sentence; group: the stem of its group names
    ("res" -> res1, res2...); build(shape, source): given the sample shape (C, *spatial) of the node
    it reads and that node's name (or INPUT), and the template's options as keywords, the block's
    layers in order with explicit inputs, all in one group, the last one the block's output.
    Names are unique within the block and differ from `source`; insert_template renames them to
    be unique in the network. Raises ConfigError when the shape cannot take the block.
    options: the keywords build takes beyond the shape and source (none for most).
    """
    name: str
    description: str
    group: str
    build: Callable[..., list[Layer]]
    options: tuple[str, ...] = ()


class BlockBuilder:
    """Collects a block's layers; each reads the previous one unless told otherwise.

    taken: the names the new layers must avoid; it grows with each one (give the network's
    names to get names unique in the network, as the loader of older projects does).
    """

    def __init__(self, source: str, group: str, taken: set[str] | None = None) -> None:
        self.source = source
        self.group = group
        self.layers: list[Layer] = []
        self._taken = taken if taken is not None else set()
        self._taken.add(source)

    @property
    def last(self) -> str:
        return self.layers[-1].name if self.layers else self.source

    def add(self, spec: LayerSpec, *inputs: str) -> str:
        """Append a layer reading `inputs` (default: the last layer, or the source); returns its
        name."""
        name = Stack().unique_name(spec, self._taken)
        self._taken.add(name)
        self.layers.append(Layer(name, spec, inputs=inputs or (self.last,), group=self.group))
        return name

    def conv_bn_relu(self, rank: int, channels: int, reads: str | None = None) -> str:
        """Conv (3 wide, same, no bias: the BN shifts) - BN - ReLU; returns the ReLU."""
        self.add(Conv(rank=rank, out_channels=channels, kernel_size=3, bias=False),
                 *((reads,) if reads else ()))
        self.add(BatchNorm())
        return self.add(ReLU())


def _spatial_rank(template: str, shape: Shape) -> int:
    """The number of spatial axes; ConfigError unless there are 1 to 3."""
    rank = len(shape) - 1
    if rank < 1:
        raise ConfigError(f"{template} needs a map with spatial axes, such as (C, H, W), but gets "
                          f"a flat vector of {shape[0]} features; insert it before the Flatten "
                          f"or Dense layer")
    if rank > MAX_SPATIAL_RANK:
        raise ConfigError(f"{template} works on 1 to 3 spatial axes, but gets "
                          f"{describe_shape(shape)} with {rank}; reshape to (C, *spatial) first")
    return rank


def _require_even(template: str, shape: Shape, why: str) -> None:
    spatial = shape[1:]
    odd = [f"{AXIS_NAMES[len(spatial)][i]} {w}" for i, w in enumerate(spatial) if w % 2]
    if odd:
        raise ConfigError(f"{template} {why}, but the map {describe_shape(shape)} has an odd "
                          f"{' and '.join(odd)}; make the size even with padding or a resize "
                          f"before")


def _residual_identity(shape: Shape, source: str) -> list[Layer]:
    rank = _spatial_rank("Residual (identity)", shape)
    c = shape[0]
    block = BlockBuilder(source, "res")
    block.conv_bn_relu(rank, c)
    block.add(Conv(rank=rank, out_channels=c, kernel_size=3, bias=False))
    body = block.add(BatchNorm())
    block.add(Add(), body, source)
    block.add(ReLU())
    return block.layers


def _residual_projection(shape: Shape, source: str) -> list[Layer]:
    rank = _spatial_rank("Residual (projection)", shape)
    c = 2 * shape[0]
    block = BlockBuilder(source, "res")
    block.add(Conv(rank=rank, out_channels=c, kernel_size=3, stride=2, bias=False))
    block.add(BatchNorm())
    block.add(ReLU())
    block.add(Conv(rank=rank, out_channels=c, kernel_size=3, bias=False))
    body = block.add(BatchNorm())
    # Kernel 1, stride 2, valid: ceil(W / 2) positions, as the body's same-padded stride 2 gives.
    block.add(Conv(rank=rank, out_channels=c, kernel_size=1, stride=2, padding="valid",
                   bias=False), source)
    shortcut = block.add(BatchNorm())
    block.add(Add(), body, shortcut)
    block.add(ReLU())
    return block.layers


GATED_OPTIONS = ("out_channels", "kernel_size", "stride", "padding", "pads", "dilation", "bias",
                 "residual")


def gated_block(block: BlockBuilder, source: str, *, rank: int, out_channels: int,
                kernel_size: int | tuple[int, ...] = 3, stride: int | tuple[int, ...] = 1,
                padding: str = "same", pads: int | tuple[int, ...] = 0,
                dilation: int | tuple[int, ...] = 1, bias: bool = True,
                residual: bool = False) -> str:
    """A gated convolution (GLU, Dauphin et al. 2017) reading `source`: one convolution with
    2 x out_channels filters, its channels split in halves (value, gate), value * sigmoid(gate),
    plus the input when `residual`. Adds the layers to `block`; returns the output's name.

    One convolution, as PyTorch's nn.GLU splits one tensor: the halves are computed in one pass,
    and the numbers are those of the gated layer of projects before graphs, bit for bit.
    """
    both = block.add(Conv(rank=rank, out_channels=2 * out_channels, kernel_size=kernel_size,
                          stride=stride, padding=padding, pads=pads, dilation=dilation,
                          bias=bias), source)
    value = block.add(Slice(starts=(0,), ends=(out_channels,), axes=(1,)), both)
    logits = block.add(Slice(starts=(out_channels,), ends=(2 * out_channels,), axes=(1,)), both)
    gate = block.add(Sigmoid(), logits)
    out = block.add(Mul(), value, gate)
    return block.add(Add(), out, source) if residual else out


def _gated(shape: Shape, source: str, **options: object) -> list[Layer]:
    rank = _spatial_rank("Gated (GLU)", shape)
    block = BlockBuilder(source, "glu")
    gated_block(block, source, rank=rank, **{"out_channels": shape[0], **options})  # type: ignore[arg-type]
    return block.layers


def inception_channels(channels: int) -> tuple[int, ...]:
    """GoogLeNet 3a's six widths scaled by channels / 192, each at least 1: (1x1, 3x3 reduce,
    3x3, 5x5 reduce, 5x5, pool projection); the block outputs 1x1 + 3x3 + 5x5 + pool projection."""
    return tuple(max(1, round(w * channels / GOOGLENET_3A_INPUT)) for w in GOOGLENET_3A)


def _inception(shape: Shape, source: str) -> list[Layer]:
    rank = _spatial_rank("Inception", shape)
    one, reduce3, three, reduce5, five, proj = inception_channels(shape[0])
    block = BlockBuilder(source, "inception")

    def conv_relu(channels: int, kernel: int, reads: str | None = None) -> str:
        block.add(Conv(rank=rank, out_channels=channels, kernel_size=kernel),
                  *((reads,) if reads else ()))
        return block.add(ReLU())

    branches = [conv_relu(one, 1, source)]
    conv_relu(reduce3, 1, source)
    branches.append(conv_relu(three, 3))
    conv_relu(reduce5, 1, source)
    branches.append(conv_relu(five, 5))
    block.add(MaxPool(rank=rank, kernel_size=3, stride=1, padding="same"), source)
    branches.append(conv_relu(proj, 1))
    block.add(Concat(), *branches)
    return block.layers


def _squeeze_excitation(shape: Shape, source: str) -> list[Layer]:
    rank = _spatial_rank("Squeeze-excitation", shape)
    c = shape[0]
    block = BlockBuilder(source, "se")
    block.add(GlobalAvgPool(), source)
    block.add(PointwiseConv(rank=rank, out_channels=max(1, c // SE_REDUCTION)))
    block.add(ReLU())
    block.add(PointwiseConv(rank=rank, out_channels=c))
    gate = block.add(Sigmoid())
    # (C, 1, 1) broadcasts over the map: each channel scaled by its own gate.
    block.add(Mul(), source, gate)
    return block.layers


def growth_rate(channels: int) -> int:
    """DenseNet's growth k: 32 (DenseNet-121) on 64 channels or more, else 12 (DenseNet-BC)."""
    return 32 if channels >= 64 else 12


def _dense_layer(shape: Shape, source: str) -> list[Layer]:
    rank = _spatial_rank("Dense layer", shape)
    k = growth_rate(shape[0])
    block = BlockBuilder(source, "dense")
    block.add(BatchNorm(), source)
    block.add(ReLU())
    block.add(PointwiseConv(rank=rank, out_channels=4 * k, bias=False))
    block.add(BatchNorm())
    block.add(ReLU())
    new = block.add(Conv(rank=rank, out_channels=k, kernel_size=3, bias=False))
    block.add(Concat(), source, new)
    return block.layers


def _unet_level(shape: Shape, source: str) -> list[Layer]:
    rank = _spatial_rank("U-Net level", shape)
    _require_even("U-Net level", shape, "halves the size and doubles it back, so it needs even "
                  "sizes to meet its skip again")
    c = shape[0]
    block = BlockBuilder(source, "unet")
    block.conv_bn_relu(rank, c, source)
    skip = block.conv_bn_relu(rank, c)
    block.add(MaxPool(rank=rank, kernel_size=2, stride=2))
    block.conv_bn_relu(rank, 2 * c)
    block.conv_bn_relu(rank, 2 * c)
    up = block.add(ConvTranspose(rank=rank, out_channels=c, kernel_size=2, stride=2))
    block.add(Concat(), skip, up)
    block.conv_bn_relu(rank, c)
    block.conv_bn_relu(rank, c)
    return block.layers


def _fpn_merge(shape: Shape, source: str) -> list[Layer]:
    rank = _spatial_rank("FPN merge", shape)
    _require_even("FPN merge", shape, "adds a level of half the size, doubled back, so it needs "
                  "even sizes")
    c = shape[0]
    block = BlockBuilder(source, "fpn")
    lateral = block.add(PointwiseConv(rank=rank, out_channels=c), source)
    block.add(Conv(rank=rank, out_channels=c, kernel_size=3, stride=2), source)
    block.add(PointwiseConv(rank=rank, out_channels=c))
    up = block.add(Resize(mode="nearest", scales=(2.0,) * rank))
    block.add(Add(), lateral, up)
    block.add(Conv(rank=rank, out_channels=c, kernel_size=3))
    return block.layers


TEMPLATES: dict[str, Template] = {t.name: t for t in (
    Template("Residual (identity)", "Two 3x3 conv-BN layers whose output is added to the input, "
             "then a ReLU: ResNet's basic block, same shape out.", "res", _residual_identity),
    Template("Residual (projection)", "A basic block that halves the size and doubles the "
             "channels, its shortcut a strided 1x1 conv and BN.", "res", _residual_projection),
    Template("Gated (GLU)", "A 3x3 conv to twice the channels, split in halves, one through a "
             "sigmoid gating the other element by element.", "glu", _gated, GATED_OPTIONS),
    Template("Inception", "Parallel 1x1, 3x3, 5x5 and pooled branches joined on the channels, "
             "as GoogLeNet's 3a block scaled to the input.", "inception", _inception),
    Template("Squeeze-excitation", "Scales each channel by a gate learned from the global mean "
             "of every channel: same shape out.", "se", _squeeze_excitation),
    Template("Dense layer", "DenseNet's BN-ReLU-1x1-BN-ReLU-3x3 bottleneck whose k new channels "
             "are joined to the input's.", "dense", _dense_layer),
    Template("U-Net level", "Conv block, down by 2, conv block on twice the channels, up by 2, "
             "joined with the skip and a conv block: same shape out.", "unet", _unet_level),
    Template("FPN merge", "A lateral 1x1 conv added to a coarser level upsampled by 2, then a "
             "3x3 smoothing conv: same shape out.", "fpn", _fpn_merge),
)}


def _template(name: str) -> Template:
    try:
        return TEMPLATES[name]
    except KeyError:
        raise ConfigError(f"there is no template {name!r}; the templates are "
                          + ", ".join(TEMPLATES)) from None


def group_paths(stack: Stack) -> set[str]:
    """Every group path in the network, parents included ("a/b" gives "a" and "a/b")."""
    out = set()
    for layer in stack.layers:
        parts = layer.group.split("/") if layer.group else []
        out.update("/".join(parts[:n]) for n in range(1, len(parts) + 1))
    return out


def parent_group(stack: Stack, after: int | None) -> str:
    """The deepest group holding both the anchor and the layer after it ("" at the edges)."""
    if after is None or after + 1 >= len(stack.layers):
        return ""
    a = stack.layers[after].group.split("/")
    b = stack.layers[after + 1].group.split("/")
    common = []
    for x, y in zip(a, b):
        if x != y or not x:
            break
        common.append(x)
    return "/".join(common)


def _block_group(stack: Stack, template: Template, after: int | None) -> str:
    """The next free <stem><n> (unique as a group name anywhere in the network), nested in the
    parent group."""
    used = {path.rsplit("/", 1)[-1] for path in group_paths(stack)}
    n = 1
    while f"{template.group}{n}" in used:
        n += 1
    parent = parent_group(stack, after)
    return f"{parent}/{template.group}{n}" if parent else f"{template.group}{n}"


def insert_template(stack: Stack, template: str, after: int | None,
                    group: str | None = None, **options: object) -> Stack:
    """The network with the template's block inserted after layer `after` (None: at the start,
    reading the network's input).

    The block reads the anchor's output; every layer that read the anchor (the next one in a
    chain, or any naming it) reads the block's output instead, and so does a network output that
    named it. The block's layers get names unique in the network and one group: `group` when
    given (a "/" path not yet in use), else as the module docstring says. options: the
    template's settings (Template.options; Gated (GLU): its convolution's settings and residual).

    Raises ConfigError for an unknown template or option, an index out of range, an anchor whose shape is
    unknown (it has an error or waits on one), a group already in use, or a shape the block
    cannot take (a flat vector, odd sizes where it halves and doubles back), naming the fix.
    """
    spec = _template(template)
    unknown = sorted(set(options) - set(spec.options))
    if unknown:
        raise ConfigError(f"{template} has no option {unknown[0]!r}; "
                          + (f"its options are {', '.join(spec.options)}" if spec.options
                             else "it takes none"))
    if after is not None and not 0 <= after < len(stack.layers):
        raise ConfigError(f"cannot insert after layer {after + 1}: the network has "
                          f"{len(stack.layers)} layers")
    if after is None:
        anchor, shape = INPUT, stack.input.sample_shape
    else:
        anchor = stack.layers[after].name
        report = analyse(stack).layers[after]
        if report.info is None:
            raise ConfigError(f"cannot insert {template} after {anchor!r}: its output shape is "
                              f"unknown until {report.status or 'its error is fixed'}; fix that "
                              f"first")
        shape = tuple(report.info.output_shape)
    if group is None:
        group = _block_group(stack, spec, after)
    elif not group or any(not part for part in group.split("/")) or group in group_paths(stack):
        raise ConfigError(f"the group {group!r} is {'in use' if group else 'empty'}; name the "
                          f"block's group with a new name such as "
                          f"{_block_group(stack, spec, after)!r}", field="group")
    try:
        block = spec.build(shape, anchor, **options)
    except ConfigError as err:
        where = "the input" if after is None else f"{anchor!r}"
        raise ConfigError(f"cannot insert {template} after {where}: {err.reason}",
                          field=err.field) from None

    taken = {layer.name for layer in stack.layers}
    renamed = {anchor: anchor}
    for layer in block:
        renamed[layer.name] = stack.unique_name(layer.spec, taken)
        taken.add(renamed[layer.name])
    block = [layer.replace(name=renamed[layer.name], group=group,
                           inputs=tuple(renamed[n] for n in layer.inputs or ()))
             for layer in block]
    output = block[-1].name

    def rewired(names: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(output if n == anchor else n for n in names)

    at = 0 if after is None else after + 1
    tail = [layer.replace(inputs=rewired(layer.inputs)) if layer.inputs and anchor in layer.inputs
            else layer for layer in stack.layers[at:]]
    result = stack.with_layers([*stack.layers[:at], *block, *tail], rewired(stack.outputs))
    _check_block(result, set(renamed.values()) - {anchor}, template, anchor)
    return result


def _check_block(stack: Stack, names: set[str], template: str, anchor: str) -> None:
    """ConfigError with the first block layer's error: a shape the builder let through but a
    layer cannot take (such as a map too small for a kernel)."""
    for layer in analyse(stack).layers:
        if layer.name in names and layer.error is not None:
            raise ConfigError(f"cannot insert {template} after "
                              f"{'the input' if anchor == INPUT else repr(anchor)}: its "
                              f"{layer.type_name} {layer.name!r} says: {layer.error.reason}")


def remove_group(stack: Stack, group: str) -> Stack:
    """The network without every layer of `group` (and of its subgroups); layers that read one of
    them read what the group read instead, and outputs that named one of them name that instead
    (or are dropped when it is the network's input).

    Raises ConfigError when no layer is in the group, or when the group reads several nodes
    (then there is no single node to reconnect its readers to).
    """
    inside = [layer for layer in stack.layers
              if layer.group == group or layer.group.startswith(group + "/")]
    if not group or not inside:
        raise ConfigError(f"no layer is in the group {group!r}; pick one of "
                          + ", ".join(sorted(group_paths(stack))), field="group")
    names = {layer.name for layer in inside}
    outside = {i: layer for i, layer in enumerate(stack.layers) if layer.name not in names}
    sources = list(dict.fromkeys(
        name for i, layer in enumerate(stack.layers) if layer.name in names
        for name in stack.input_names(i) if name not in names))
    if len(sources) != 1:
        raise ConfigError(f"the group {group!r} reads {' and '.join(map(repr, sources))}, so its "
                          f"readers have no single node to read instead; remove its layers one "
                          f"by one", field="group")
    source = sources[0]

    layers: list[Layer] = []
    for i, layer in outside.items():
        reads = tuple(source if n in names else n for n in stack.input_names(i))
        before = layers[-1].name if layers else INPUT
        if layer.inputs is None and reads == (before,):
            layers.append(layer)  # still the next step of its chain
        else:
            layers.append(layer.replace(inputs=reads) if reads != layer.inputs else layer)
    outputs = tuple(dict.fromkeys(source if n in names else n for n in stack.outputs))
    return stack.with_layers(layers, tuple(n for n in outputs if n != INPUT))
