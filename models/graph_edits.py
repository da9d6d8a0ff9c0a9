"""Edits of a network's edges, as a person makes them in the window: insert a layer after a node,
start a branch, merge nodes, reconnect an input, delete a node and reconnect around it.

Every edit returns a new Stack (the old one is untouched, so undo is by value) and keeps the
layers it does not rewire as the same objects, so the executor reuses their outputs. A layer that
reads the one before it keeps `inputs=None`, as a chain is written; others name their inputs.
Errors are ConfigErrors that say what the edit would break and how to do it instead.
"""
from __future__ import annotations

from models.errors import ConfigError
from models.layers import LayerSpec
from models.stack import INPUT, Layer, Stack
from models.templates import parent_group


def _reads(stack: Stack) -> list[tuple[Layer, tuple[str, ...]]]:
    """Each layer with the names it reads, made explicit."""
    return [(layer, stack.input_names(i)) for i, layer in enumerate(stack.layers)]


def _rebuilt(stack: Stack, entries: list[tuple[Layer, tuple[str, ...]]],
             outputs: tuple[str, ...]) -> Stack:
    """The network of these layers and reads; a layer whose reads did not change stays the same
    object, and one that reads the layer before it is written with inputs=None."""
    layers: list[Layer] = []
    for layer, reads in entries:
        before = layers[-1].name if layers else INPUT
        if layer.inputs is None and reads == (before,) or layer.inputs == reads:
            layers.append(layer)
        else:
            layers.append(layer.replace(inputs=None if reads == (before,) else reads))
    return stack.with_layers(layers, outputs)


def _rename_reads(reads: tuple[str, ...], old: str, new: str) -> tuple[str, ...]:
    return tuple(new if name == old else name for name in reads)


def _name(stack: Stack, index: int | None) -> str:
    return INPUT if index is None else stack.layers[index].name


def insert_after(stack: Stack, after: int | None, layer: Layer) -> Stack:
    """`layer` spliced in after node `after` (None: the network's input): it reads that node,
    and every layer and network output that read the node reads `layer` instead. In a chain this
    is inserting at index after + 1. The layer joins the group the node and its successor share."""
    anchor = _name(stack, after)
    at = 0 if after is None else after + 1
    entries = _reads(stack)
    new = layer.replace(group=layer.group or parent_group(stack, after))
    tail = [(other, _rename_reads(reads, anchor, new.name)) for other, reads in entries[at:]]
    return _rebuilt(stack, [*entries[:at], (new, (anchor,)), *tail],
                    _rename_reads(stack.outputs, anchor, new.name))


def branch(stack: Stack, source: int | None, spec: LayerSpec) -> tuple[Stack, int]:
    """A new layer that reads node `source` (None: the input) beside its existing readers, just
    after it; returns the network and the new layer's index. Nothing reads the branch yet, so it
    is a network output until it is merged."""
    at = 0 if source is None else source + 1
    entries = _reads(stack)
    new = Layer(stack.unique_name(spec), spec, group=parent_group(stack, source))
    outputs = stack.outputs + (new.name,) if stack.outputs else ()
    return _rebuilt(stack, [*entries[:at], (new, (_name(stack, source),)), *entries[at:]],
                    outputs), at


def merge(stack: Stack, indices: list[int], spec: LayerSpec) -> tuple[Stack, int]:
    """A merge layer (Add, Concat, Mul...) reading the nodes `indices` in that order, placed after
    the last of them in network order; the layers and outputs that read that last node read the
    merge instead. Returns the network and the merge's index.

    Raises ConfigError for fewer than two nodes, or more than the merge takes."""
    nodes = list(dict.fromkeys(indices))
    if len(nodes) < 2:
        raise ConfigError(f"a {spec.type_name} merges two or more nodes, but {len(nodes)} "
                          f"{'is' if len(nodes) == 1 else 'are'} selected; select the branches' "
                          f"last nodes with Ctrl+click first")
    if spec.max_inputs is not None and len(nodes) > spec.max_inputs:
        raise ConfigError(f"a {spec.type_name} merges at most {spec.max_inputs} nodes, but "
                          f"{len(nodes)} are selected; merge them in steps")
    last = max(nodes)
    names = tuple(stack.layers[i].name for i in nodes)
    new = Layer(stack.unique_name(spec), spec, group=parent_group(stack, last))
    entries = _reads(stack)
    tail = [(other, _rename_reads(reads, names[nodes.index(last)], new.name)
             if other.name not in names else reads) for other, reads in entries[last + 1:]]
    outputs = tuple(dict.fromkeys(_rename_reads(stack.outputs, stack.layers[last].name, new.name)
                                  if stack.outputs else ()))
    outputs = tuple(name for name in outputs if name not in names)
    return _rebuilt(stack, [*entries[:last + 1], (new, names), *tail], outputs), last + 1


def reconnect(stack: Stack, index: int, slot: int, source: str) -> Stack:
    """Layer `index` reads `source` (a layer before it, or INPUT) as its input number `slot`.

    Raises ConfigError when the slot does not exist or the source is not before the layer."""
    entries = _reads(stack)
    layer, reads = entries[index]
    if not 0 <= slot < len(reads):
        raise ConfigError(f"{layer.name!r} has {len(reads)} input{'s' * (len(reads) != 1)}, so "
                          f"there is no input {slot + 1}; pick one from 1 to {len(reads)}",
                          field="inputs", layer_index=index)
    earlier = {INPUT, *(other.name for other, _ in entries[:index])}
    if source not in earlier:
        where = "comes after it" if source in {other.name for other, _ in entries} else \
            "is no node of the network"
        raise ConfigError(f"{layer.name!r} cannot read {source!r}, which {where}; pick the input "
                          f"or a node above it", field="inputs", layer_index=index)
    entries[index] = (layer, reads[:slot] + (source,) + reads[slot + 1:])
    return _rebuilt(stack, entries, stack.outputs)


def delete(stack: Stack, index: int) -> Stack:
    """The network without layer `index`. When it reads one node, its readers and outputs read
    that node instead (reconnected around it); a merge nothing reads just goes.

    Raises ConfigError when the layer reads several nodes and others read it: there is no one
    node to reconnect them to, and the message names what would be disconnected."""
    entries = _reads(stack)
    layer, reads = entries[index]
    readers = [other.name for other, other_reads in entries[index + 1:] if layer.name in other_reads]
    sources = tuple(dict.fromkeys(reads))
    if len(sources) != 1 and (readers or layer.name in stack.outputs):
        users = readers[:3] + ([] if readers else ["the network's output"])
        raise ConfigError(f"deleting {layer.name!r} would disconnect {', '.join(map(repr, users))}"
                          f"{' and more' if len(readers) > 3 else ''}: it merges "
                          f"{' and '.join(map(repr, sources))}, so there is no one node to read "
                          f"instead; reconnect {'them' if len(users) > 1 else 'it'} first",
                          field="inputs", layer_index=index)
    source = sources[0] if len(sources) == 1 else None
    tail = [(other, tuple(source if n == layer.name else n for n in other_reads))  # type: ignore[misc]
            for other, other_reads in entries[index + 1:]]
    outputs = tuple(dict.fromkeys(source if n == layer.name else n for n in stack.outputs))
    return _rebuilt(stack, [*entries[:index], *tail],
                    tuple(n for n in outputs if n not in (None, INPUT)))
