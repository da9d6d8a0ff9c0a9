"""Project files: the stack as JSON (so it diffs well) with its weights, in one file.

Format `convscope-project`, version 3:
```
{"format": "convscope-project", "version": 3,
 "input": {"channels": 3, "spatial": [64, 64], "batch": 1},
 "seed": 0,
 "layers": [{"name": "conv1", "spec": {"type": "Conv", "rank": 2, "out_channels": 8, ...}},
            {"name": "add1", "spec": {"type": "Add", ...}, "inputs": ["conv1", "input"],
             "group": "layer1/0"}, ...],
 "outputs": ["add1"],
 "weights": {"conv1": {"W": {"shape": [8, 3, 3, 3], "data": "<base64 of little-endian float32>"}}}}
```
Layers are in topological order; `spec` holds every field of the layer's spec (models.layers).
`inputs` (the layers it reads, "input" for the network's input) is written only where a layer
does not simply read the one before it, `group` only where it has one, and `outputs` only where
they are not the layers nothing reads.

Older versions read unchanged and compute the same outputs bit for bit:
- Version 2 is version 3 that may hold the block kinds `Residual` (a `body` chain and an identity
  or projection shortcut) and `Gated` (GLU). Since version 3, residual and gated blocks are
  grouped subgraphs of ordinary layers, as templates insert them: each old block opens as that
  subgraph (models.legacy_blocks), in a group named after it, with its weights.
- Version 1 (chains, written before graphs) is version 2 without `inputs`, `group` and
  `outputs`.

Weights are optional per layer: a missing one gets its deterministic default from the seed.
Weights are stored bit for bit, so every float32 value a stack holds (NaN and infinities
included) reads back exactly: what the app holds, it can save and reopen. Files are data only:
reading one executes nothing.

A project holds no more than a Stack may (models.stack's MAX_NODES, MAX_NESTING_DEPTH,
MAX_NAME_LENGTH); the loader checks them before building anything, without recursing.

Saving over a file that another program changed since it was read: `load_stamped` returns the
file's FileStamp with its stack, `save` returns the new one, and `save(..., expect=stamp)`
raises FileChangedError instead of overwriting a file whose stamp is no longer that one.
"""
from __future__ import annotations

import base64
import binascii
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.analysis import analyse
from models.atomic import write_atomic
from models.errors import ConfigError, FileChangedError, FileFormatError, display_name
from models.layers import Identity, LayerSpec
from models.legacy_blocks import LegacyLayer, expand, is_legacy
from models.stack import (MAX_NESTING_DEPTH, MAX_NODES, InputSpec, Layer, Stack, check_limits,
                          frozen_array)

FORMAT = "convscope-project"
VERSION = 3
SUFFIX = ".convscope"


def to_json(stack: Stack) -> str:
    """The project file's text."""
    document = {
        "format": FORMAT, "version": VERSION,
        "input": {"channels": stack.input.channels, "spatial": list(stack.input.spatial),
                  "batch": stack.input.batch},
        "seed": stack.seed,
        "layers": [_layer_entry(layer) for layer in stack.layers],
        **({"outputs": list(stack.outputs)} if stack.outputs else {}),
        "weights": {layer.name: {key: _encode(array) for key, array in layer.weights.items()}
                    for layer in stack.layers if layer.weights},
    }
    return json.dumps(document, indent=1) + "\n"


def _layer_entry(layer: Layer) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": layer.name, "spec": layer.spec.to_dict()}
    if layer.inputs is not None:
        entry["inputs"] = list(layer.inputs)
    if layer.group:
        entry["group"] = layer.group
    return entry


@dataclass(frozen=True)
class FileStamp:
    """What tells one version of a file on disk from another: the file (device and inode, which
    change when a program replaces it, as saving does), its size and its modification time in
    nanoseconds (which change when a program writes into it)."""
    device: int
    inode: int
    size: int
    mtime_ns: int

    @staticmethod
    def of_status(status: os.stat_result) -> FileStamp:
        return FileStamp(status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns)

    @staticmethod
    def of(path: str | os.PathLike[str]) -> FileStamp | None:
        """The stamp of the file at path now (through symbolic links), or None when none is."""
        try:
            return FileStamp.of_status(os.stat(path))
        except (FileNotFoundError, NotADirectoryError):
            return None


def save(stack: Stack, path: str | os.PathLike[str], *, expect: FileStamp | None = None,
         private: bool = False) -> FileStamp:
    """Write the project atomically (the old file stays whole if this fails), through a symbolic
    link to the file it points to. Returns the written file's stamp.

    expect: the stamp the file had when it was read or last saved; when the file on disk has
    another one (another program changed or replaced it), raise FileChangedError and write
    nothing. A file that is gone is no conflict: there is nothing to lose. private: readable by
    the owner only (recovery copies). Raises OSError naming path when it cannot be written.
    """
    if expect is not None:
        now = FileStamp.of(path)
        if now is not None and now != expect:
            raise FileChangedError(
                f"{display_name(Path(path).name, None)} changed on disk since it was opened or "
                f"last saved, by another program; overwrite it to keep this version, or save "
                f"under another name to keep both", path)
    return FileStamp.of_status(write_atomic(path, to_json(stack).encode("utf-8"),
                                            private=private))


def load(path: str | os.PathLike[str]) -> Stack:
    """Read a project file. Raises FileFormatError with the file's name and what is wrong."""
    return load_stamped(path)[0]


def load_stamped(path: str | os.PathLike[str]) -> tuple[Stack, FileStamp]:
    """Read a project file, and the stamp of the version read (for save's expect). Raises
    FileFormatError with the file's name and what is wrong."""
    name = display_name(Path(path).name, None)
    try:
        with open(path, "rb") as handle:
            stamp = FileStamp.of_status(os.fstat(handle.fileno()))
            # utf-8-sig: a byte-order mark, as some editors add, is not part of the JSON.
            text = handle.read().decode("utf-8-sig")
    except IsADirectoryError:
        raise FileFormatError(f"{name} is a folder, not a ConvScope project") from None
    except OSError as err:
        raise FileFormatError(f"cannot read {name}: {err.strerror or err}") from None
    except UnicodeDecodeError:
        raise FileFormatError(f"{name} is not a ConvScope project (it is not text)") from None
    try:
        return from_json(text), stamp
    except FileFormatError as err:
        raise FileFormatError(f"{name}: {err.reason}", field=err.field) from None


def from_json(text: str) -> Stack:
    """The stack a project file's text describes. Raises FileFormatError."""
    if not text.strip():
        raise FileFormatError("the file is empty")
    try:
        doc = json.loads(text, parse_constant=_refuse_constant, parse_int=_bounded_int)
    except json.JSONDecodeError as err:
        raise FileFormatError(f"not valid JSON (line {err.lineno}, column {err.colno}: {err.msg}); "
                              f"the file may be truncated") from None
    except RecursionError:
        raise FileFormatError("its JSON is nested too deeply to be a ConvScope project") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise FileFormatError("not a ConvScope project (no \"format\": \"convscope-project\")")
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise FileFormatError("the project has no version number")
    if version < 1:
        raise FileFormatError(f"the project has version {version}, but versions start at 1; the "
                              f"file is damaged")
    if version > VERSION:
        raise FileFormatError(f"the project is version {version}, written by a newer ConvScope; "
                              f"this one reads up to version {VERSION}: update ConvScope")
    try:
        return _stack(doc)
    except FileFormatError:
        raise
    except ConfigError as err:
        raise FileFormatError(str(err), field=err.field) from None
    except (TypeError, ValueError, KeyError, AttributeError) as err:
        raise FileFormatError(f"malformed project: {err}") from None


# Far beyond any real size or seed, and small enough that the arithmetic stays exact and finite.
MAX_INT_DIGITS = 18


def _bounded_int(text: str) -> int:
    """An integer of the file; refuses ones too long to be a size, as they only come from damage
    (Python's ints are unbounded, and the arithmetic on them would overflow floats)."""
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise FileFormatError(f"it holds the number {text[:12]}... ({len(text)} digits), larger "
                              f"than any setting can be; the file is damaged")
    return int(text)


def _refuse_constant(name: str) -> Any:
    raise FileFormatError(f"it holds {name}, which is not a number a setting can take (and not "
                          f"valid JSON); the file is damaged")


def _stack(doc: dict[str, Any]) -> Stack:
    raw_input = _typed(doc.get("input"), dict, "input")
    input_spec = InputSpec(channels=raw_input.get("channels"), spatial=raw_input.get("spatial"),
                           batch=raw_input.get("batch", 1))
    seed = doc.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise FileFormatError(f"seed must be a whole number of at least 0, got {seed!r}")
    weights = _typed(doc.get("weights", {}), dict, "weights")
    entries = _typed(doc.get("layers"), list, "layers")
    if len(entries) > MAX_NODES:
        raise FileFormatError(f"it has {len(entries):,} layers, more than the {MAX_NODES:,} "
                              f"ConvScope handles")
    items: list[Layer | LegacyLayer] = []
    for i, entry in enumerate(entries):
        entry = _typed(entry, dict, f"layers[{i}]")
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise FileFormatError(f"layer {i + 1} has no name")
        where = f"layer {i + 1} ({display_name(name)})"
        raw_spec = _typed(entry.get("spec"), dict, f"layers[{i}].spec")
        if _nesting(raw_spec) > MAX_NESTING_DEPTH:
            # Checked on the text: building the blocks first would recurse once per level.
            raise FileFormatError(f"{where}: its blocks inside blocks are more than "
                                  f"{MAX_NESTING_DEPTH} levels deep, the most ConvScope handles",
                                  field="spec")
        legacy = is_legacy(raw_spec)
        try:
            # A block of version 2 or older is expanded below, once the layers before it are read.
            spec = None if legacy else LayerSpec.from_dict(raw_spec)
        except ConfigError as err:
            raise FileFormatError(f"{where}: {err.reason}", field=err.field) from None
        arrays = _typed(weights.get(name, {}), dict, f"weights of {display_name(name)}")
        inputs = entry.get("inputs")
        if inputs is not None:
            inputs = tuple(_typed(inputs, list, f"inputs of {display_name(name)}"))
            if not inputs or not all(isinstance(n, str) for n in inputs):
                raise FileFormatError(f"{where}: inputs must be a list of layer names")
        group = entry.get("group", "")
        if not isinstance(group, str):
            raise FileFormatError(f"{where}: group must be text")
        # An old block's name and group are checked on a stand-in: its spec is read later.
        layer = Layer(name, spec or Identity(), {}, inputs=inputs, group=group)
        try:
            check_limits([layer])  # before decoding its weights: a name may be all that is wrong
        except ConfigError as err:
            raise FileFormatError(f"{where}: {err.reason}", field=err.field) from None
        decoded = {k: _decode(v, f"{display_name(name)}.{display_name(k)}")
                   for k, v in arrays.items()}
        items.append(LegacyLayer(name, raw_spec, inputs, group, decoded) if legacy
                     else layer.replace(weights=decoded))
    stray = sorted(set(weights) - {item.name for item in items})
    if stray:
        raise FileFormatError(f"it holds weights for '{display_name(stray[0])}', but no layer "
                              f"has that name")
    outputs = _typed(doc.get("outputs", []), list, "outputs")
    if not all(isinstance(n, str) for n in outputs):
        raise FileFormatError("outputs must be a list of layer names")
    layers: list[Layer] = [item for item in items if isinstance(item, Layer)]
    if len(layers) < len(items):
        layers, renamed = expand(input_spec, seed, items)
        outputs = [renamed.get(n, n) for n in outputs]
    stack = Stack(input=input_spec, seed=seed).with_layers(layers, tuple(outputs))
    _check_weight_shapes(stack)
    return stack


def _check_weight_shapes(stack: Stack) -> None:
    """Refuse stored weights that do not fit their layer: filling them with defaults instead
    would silently replace the file's numbers. Layers whose settings cannot work are not checked
    (their shapes are unknown, and they are kept as they are until edited)."""
    for layer, layer_report in zip(stack.layers, analyse(stack).layers):
        if layer_report.info is None:
            continue
        shapes = layer_report.info.weight_shapes
        name = display_name(layer.name)
        for key, array in layer.weights.items():
            where = f"weight {name}.{display_name(key)}"
            if key not in shapes:
                raise FileFormatError(f"{where} is not a weight of {layer.spec.type_name} "
                                      f"'{name}', which has {', '.join(shapes) or 'none'}")
            if array.shape != shapes[key]:
                raise FileFormatError(f"{where} has shape {array.shape}, but {layer.spec.type_name} "
                                      f"'{name}' needs {shapes[key]}")


def _typed(value: Any, kind: type, where: str) -> Any:
    if not isinstance(value, kind):
        raise FileFormatError(f"{where} must be an {'array' if kind is list else 'object'}, "
                              f"got {type(value).__name__}")
    return value


def _encode(array: np.ndarray) -> dict[str, Any]:
    data = np.ascontiguousarray(array, dtype="<f4").tobytes()
    return {"shape": list(array.shape), "data": base64.b64encode(data).decode("ascii")}


def _decode(entry: Any, where: str) -> np.ndarray:
    entry = _typed(entry, dict, f"weight {where}")
    shape = entry.get("shape")
    if not isinstance(shape, list) or any(isinstance(d, bool) or not isinstance(d, int) or d < 0
                                          for d in shape):
        raise FileFormatError(f"weight {where} has no valid shape")
    try:
        raw = base64.b64decode(entry.get("data", ""), validate=True)
    except (binascii.Error, TypeError):
        raise FileFormatError(f"weight {where} is not valid base64") from None
    if len(raw) != 4 * math.prod(shape):
        raise FileFormatError(f"weight {where} holds {len(raw) // 4} values but its shape "
                              f"{tuple(shape)} needs {math.prod(shape)}")
    return frozen_array(np.frombuffer(raw, dtype="<f4").reshape(shape))


def _nesting(raw_spec: dict[str, Any]) -> int:
    """How many levels of layer entries (objects with a "type") a spec's JSON holds, counted
    without recursion and no further than one past MAX_NESTING_DEPTH."""
    deepest, todo = 0, [(raw_spec, 0)]
    while todo and deepest <= MAX_NESTING_DEPTH:
        value, depth = todo.pop()
        if isinstance(value, dict):
            depth += "type" in value
            deepest = max(deepest, depth)
            todo.extend((item, depth) for item in value.values())
        elif isinstance(value, list):
            todo.extend((item, depth) for item in value)
    return deepest
