"""Bad files of every kind ConvScope opens, written with real writers into a folder.

Each BadFile says which way it is opened (`kind`: "project" or "onnx" for File > Open and the
sub-commands' FILE, "input" for File > Open input and `infer --input`) and the words its one error
message must hold besides the file's name. The inputs are meant for LeNet-5 (1 x 32 x 32).
"""
from __future__ import annotations

import base64
import copy
import json
import struct
import wave
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from engine.onnx.export import export_model
from engine.onnx.limits import MAX_NODES
from models import project
from models.presets import lenet5
from tests.reliability.huge_images import write_half_white_png

LENET_INPUT = (1, 32, 32)


@dataclass(frozen=True)
class BadFile:
    path: Path
    kind: str
    words: tuple[str, ...]

    @property
    def id(self) -> str:
        return self.path.name


class _Writer:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.files: list[BadFile] = []

    def add(self, name: str, kind: str, words: tuple[str, ...] | str,
            write: Callable[[Path], None]) -> None:
        path = self.folder / name
        assert not path.exists(), f"two bad files are named {name}"
        write(path)
        self.files.append(BadFile(path, kind, (words,) if isinstance(words, str) else words))

    def data(self, name: str, kind: str, words: tuple[str, ...] | str, data: bytes) -> None:
        self.add(name, kind, words, lambda path: path.write_bytes(data))


# ---- projects ---------------------------------------------------------------------------------

def lenet_document() -> dict[str, Any]:
    return json.loads(project.to_json(lenet5()))


def _with(doc: dict[str, Any], change: Callable[[dict[str, Any]], None]) -> bytes:
    doc = copy.deepcopy(doc)
    change(doc)
    return json.dumps(doc).encode()


def _set(keys: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        target = doc
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value
    return change


def _delete(keys: tuple[Any, ...]) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        target = doc
        for key in keys[:-1]:
            target = target[key]
        del target[keys[-1]]
    return change


WRONG_TYPES = {"text": "3", "list": [1, 2, 3, 4, 5], "null": None, "object": {"a": 1},
               "float": 2.5, "bool": True}
# Every field of a Conv2D spec, and the wrong values its type refuses (a bool is an int to JSON's
# readers, so fields that take true/false get numbers instead).
CONV_FIELD_VALUES = {
    "rank": ("text", "list", "null", "object", "float", "bool"),
    "out_channels": ("text", "list", "null", "object", "float", "bool"),
    "kernel_size": ("text", "list", "null", "object", "float", "bool"),
    "stride": ("text", "list", "null", "object", "float", "bool"),
    "padding": ("list", "null", "object", "float", "bool"),
    "pads": ("text", "list", "null", "object", "float", "bool"),
    "dilation": ("text", "list", "null", "object", "float", "bool"),
    "groups": ("text", "list", "null", "object", "float", "bool"),
    "bias": ("text", "list", "null", "object", "float"),
}


def _projects(w: _Writer) -> None:
    doc = lenet_document()
    text = json.dumps(doc).encode()
    for keep in (1, 100, len(text) // 2, len(text) - 2):
        w.data(f"cut-at-{keep}.convscope", "project", ("json", "truncated"), text[:keep])
    w.data("empty.convscope", "project", "empty", b"")
    w.data("blank.convscope", "project", "empty", b" \n\t\n")
    w.data("random.convscope", "project", "not text",
           b"\xff\xfe" + np.random.default_rng(1).bytes(2000))
    w.data("zeros.convscope", "project", "json", bytes(64))
    w.data("future.convscope", "project", ("version 999", "newer"),
           _with(doc, _set(("version",), 999)))
    w.data("version-zero.convscope", "project", "version 0", _with(doc, _set(("version",), 0)))
    w.data("version-text.convscope", "project", "no version", _with(doc, _set(("version",), "1")))
    w.data("no-format.convscope", "project", "not a convscope project",
           _with(doc, _delete(("format",))))
    w.data("top-array.convscope", "project", "not a convscope project", b"[1, 2, 3]")
    w.data("nan-constant.convscope", "project", "nan",
           text.replace(b'"seed": 0', b'"seed": NaN'))
    w.data("huge-int.convscope", "project", "digits",
           text.replace(b'"seed": 0', b'"seed": 1' + b"0" * 400))
    w.data("nested.convscope", "project", "nested", b"[" * 100_000 + b"]" * 100_000)
    for field, kinds in CONV_FIELD_VALUES.items():
        for kind in kinds:
            w.data(f"conv-{field}-{kind}.convscope", "project", field,
                   _with(doc, _set(("layers", 0, "spec", field), WRONG_TYPES[kind])))
    for field in ("channels", "spatial", "batch"):
        for kind in ("text", "null", "object", "float", "bool"):
            w.data(f"input-{field}-{kind}.convscope", "project", f"input {field}",
                   _with(doc, _set(("input", field), WRONG_TYPES[kind])))
    for kind in ("text", "list", "null", "float"):
        w.data(f"input-{kind}.convscope", "project", "input must be an object",
               _with(doc, _set(("input",), WRONG_TYPES[kind])))
        w.data(f"layers-{kind}.convscope", "project", "layers",
               _with(doc, _set(("layers",), WRONG_TYPES[kind] if kind != "list" else {"a": 1})))
        w.data(f"seed-{kind}.convscope", "project", "seed",
               _with(doc, _set(("seed",), WRONG_TYPES[kind])))
        w.data(f"weights-{kind}.convscope", "project", "weights",
               _with(doc, _set(("weights",), WRONG_TYPES[kind])))
        if kind != "text":
            w.data(f"name-{kind}.convscope", "project", ("layer 1", "no name"),
                   _with(doc, _set(("layers", 0, "name"), WRONG_TYPES[kind])))
    w.data("seed-negative.convscope", "project", "seed", _with(doc, _set(("seed",), -1)))
    w.data("no-input.convscope", "project", "input", _with(doc, _delete(("input",))))
    w.data("no-layers.convscope", "project", "layers", _with(doc, _delete(("layers",))))
    w.data("no-spec.convscope", "project", "spec", _with(doc, _delete(("layers", 0, "spec"))))
    w.data("no-type.convscope", "project", "type",
           _with(doc, _delete(("layers", 0, "spec", "type"))))
    w.data("no-name.convscope", "project", "no name", _with(doc, _delete(("layers", 0, "name"))))
    w.data("unknown-type.convscope", "project", ("unknown layer type", "Warp"),
           _with(doc, _set(("layers", 0, "spec", "type"), "Warp")))
    w.data("unknown-setting.convscope", "project", "no setting 'colour'",
           _with(doc, _set(("layers", 0, "spec", "colour"), 3)))
    w.data("same-names.convscope", "project", ("conv1", "unique"),
           _with(doc, _set(("layers", 1, "name"), "conv1")))
    _bad_weights(w, doc)


def _bad_weights(w: _Writer, doc: dict[str, Any]) -> None:
    kernel = ("weights", "conv1", "W")
    values = np.frombuffer(base64.b64decode(doc["weights"]["conv1"]["W"]["data"]), "<f4")

    def data(array: np.ndarray) -> str:
        return base64.b64encode(array.tobytes()).decode()

    w.data("w-not-base64.convscope", "project", ("conv1.W", "base64"),
           _with(doc, _set((*kernel, "data"), "!!! not base64 !!!")))
    w.data("w-too-short.convscope", "project", ("conv1.W", "149 values"),
           _with(doc, _set((*kernel, "data"), data(values[:-1]))))
    w.data("w-float64.convscope", "project", ("conv1.W", "300 values"),
           _with(doc, _set((*kernel, "data"), data(values.astype("<f8")))))
    w.data("w-float16.convscope", "project", ("conv1.W", "75 values"),
           _with(doc, _set((*kernel, "data"), data(values.astype("<f2")))))
    w.data("w-flat-shape.convscope", "project", ("conv1.W", "(150,)", "needs (6, 1, 5, 5)"),
           _with(doc, _set((*kernel, "shape"), [150])))
    w.data("w-swapped-shape.convscope", "project", ("conv1.W", "(1, 6, 5, 5)"),
           _with(doc, _set((*kernel, "shape"), [1, 6, 5, 5])))
    w.data("w-negative-shape.convscope", "project", ("conv1.W", "shape"),
           _with(doc, _set((*kernel, "shape"), [-6, -1, 5, 5])))
    w.data("w-text-shape.convscope", "project", ("conv1.W", "shape"),
           _with(doc, _set((*kernel, "shape"), "6x1x5x5")))
    w.data("w-list.convscope", "project", ("conv1.W", "object"),
           _with(doc, _set(kernel, [1.0, 2.0])))
    w.data("w-unknown-key.convscope", "project", ("conv1.Q", "not a weight"),
           _with(doc, _set(("weights", "conv1", "Q"), doc["weights"]["conv1"]["W"])))
    w.data("w-unknown-layer.convscope", "project", ("conv9", "no layer"),
           _with(doc, _set(("weights", "conv9"), doc["weights"]["conv1"])))


# ---- ONNX -------------------------------------------------------------------------------------

def _float(name: str, shape: list[int]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def _graph_model(nodes: list[onnx.NodeProto], inputs: list[onnx.ValueInfoProto],
                 initializers: list[onnx.TensorProto] = (), extra_opsets=(),
                 check: bool = True, out_shape: list[int] | None = None) -> bytes:
    """A model of these nodes, whose last node's output (of out_shape, else the first
    input's shape) is the graph's output."""
    shape = out_shape or [d.dim_value for d in inputs[0].type.tensor_type.shape.dim]
    graph = helper.make_graph(nodes, "g", inputs, [_float(nodes[-1].output[0], shape)],
                              initializer=list(initializers))
    opsets = [helper.make_opsetid("", 17), *(helper.make_opsetid(d, v) for d, v in extra_opsets)]
    model = helper.make_model(graph, opset_imports=opsets)
    if check:  # a valid model but for what the file is meant to show
        onnx.checker.check_model(model)
    return model.SerializeToString()


def _onnx(w: _Writer) -> None:
    model = export_model(lenet5())
    data = model.SerializeToString()
    for keep in (10, len(data) // 3, len(data) - 1):
        w.data(f"cut-at-{keep}.onnx", "onnx", "onnx", data[:keep])
    w.data("empty.onnx", "onnx", "empty", b"")
    w.data("random.onnx", "onnx", "not an onnx model", np.random.default_rng(2).bytes(3000))
    w.data("notes.onnx", "onnx", "not an onnx model", b"these are my notes, not a model\n")
    w.data("project.onnx", "onnx", "not an onnx model", project.to_json(lenet5()).encode())
    # An operator outside the vocabulary (Einsum, LSTM) no longer makes a file bad: it opens
    # as an opaque node that onnxruntime computes. What no network can be still is.
    frob = helper.make_node("Frobnicate", ["x"], ["y"], name="frob", domain="my.ops")
    w.data("unknown-op.onnx", "onnx", ("my.ops.Frobnicate", "onnxruntime cannot run it", "frob"),
           _graph_model([frob], [_float("x", [1, 2, 4])], extra_opsets=[("my.ops", 1)]))
    top_k = helper.make_node("TopK", ["x", "k"], ["v", "i"], name="best", axis=1)
    cast = helper.make_node("Cast", ["i"], ["f"], name="cast", to=TensorProto.FLOAT)
    both = helper.make_node("Add", ["v", "f"], ["y"], name="add")
    w.data("two-results.onnx", "onnx", ("TopK", "2 results", "best"),
           _graph_model([top_k, cast, both], [_float("x", [1, 4, 3])],
                        [numpy_helper.from_array(np.array([2], np.int64), "k")],
                        out_shape=[1, 2, 3]))
    loop = [helper.make_node("Add", ["x", "b"], ["a"], name="first"),
            helper.make_node("Relu", ["a"], ["b"], name="second"),
            helper.make_node("Relu", ["b"], ["y"], name="last")]
    w.data("cycle.onnx", "onnx", ("cycle", "first", "second"),
           _graph_model(loop, [_float("x", [1, 2, 4])], check=False))
    add = helper.make_node("Add", ["x", "z"], ["y"], name="join")
    w.data("two-inputs.onnx", "onnx", ("one input", "2 (x, z)"),
           _graph_model([add], [_float("x", [1, 2, 4]), _float("z", [1, 2, 4])]))
    relu = helper.make_node("Relu", ["x"], ["y"], name="relu")
    w.data("int-input.onnx", "onnx", ("float32",),
           _graph_model([relu], [helper.make_tensor_value_info("x", TensorProto.INT32,
                                                               [1, 2, 4])]))
    dropout = helper.make_node("Dropout", ["x", "ratio", "training"], ["y"], name="drop")
    w.data("training-dropout.onnx", "onnx", ("training mode", "drop"),
           _graph_model([dropout], [_float("x", [1, 2, 4])],
                        [numpy_helper.from_array(np.array(0.5, np.float32), "ratio"),
                         numpy_helper.from_array(np.array(True), "training")]))
    for name, location in (("parent", "../secret.bin"), ("absolute", "/etc/hostname")):
        outside = copy.deepcopy(model)
        tensor = outside.graph.initializer[0]
        tensor.ClearField("raw_data")
        tensor.data_location = TensorProto.EXTERNAL
        entry = tensor.external_data.add()
        entry.key, entry.value = "location", location
        w.data(f"external-{name}.onnx", "onnx", ("outside the model's folder", location),
               outside.SerializeToString())
    nan = copy.deepcopy(model)
    values = numpy_helper.to_array(nan.graph.initializer[0]).copy()
    values.flat[3] = np.nan
    nan.graph.initializer[0].CopyFrom(numpy_helper.from_array(values, "conv1.W"))
    w.data("nan-weight.onnx", "onnx", ("conv1.W", "nan"), nan.SerializeToString())
    short = copy.deepcopy(model)
    short.graph.initializer[0].raw_data = short.graph.initializer[0].raw_data[:-8]
    w.data("short-weight.onnx", "onnx", ("conv1.W", "damaged"), short.SerializeToString())
    future = copy.deepcopy(model)
    future.opset_import[0].version = 999
    w.data("opset-999.onnx", "onnx", ("opset 999", "update onnx"), future.SerializeToString())


def residual_chain(blocks: int, halve: bool = False, bad_constant: bool = False,
                   shape: tuple[int, ...] = (1, 2, 4, 4)) -> onnx.ModelProto:
    """x -> `blocks` residual blocks a = a + Relu(a) (then a * 0.5 when halve) -> y.
    bad_constant: the last Add also reads a constant that onnxruntime cannot compute (a Reshape
    of 6 values to 4, which onnx's shape inference lets pass), so constant folding must fall
    back to folding node by node."""
    nodes, inits, cur = [], [], "x"
    if halve:
        inits.append(numpy_helper.from_array(np.array(0.5, np.float32), "half"))
    for i in range(blocks):
        nodes.append(helper.make_node("Relu", [cur], [f"r{i}"], name=f"/block{i}/relu"))
        nodes.append(helper.make_node("Add", [cur, f"r{i}"], [f"s{i}"], name=f"/block{i}/add"))
        cur = f"s{i}"
        if halve:
            nodes.append(helper.make_node("Mul", [cur, "half"], [f"h{i}"], name=f"/block{i}/half"))
            cur = f"h{i}"
    if bad_constant:
        inits += [numpy_helper.from_array(np.ones(6, np.float32), "six"),
                  numpy_helper.from_array(np.array([4], np.int64), "four")]
        nodes.append(helper.make_node("Reshape", ["six", "four"], ["c"], name="badreshape"))
        nodes.append(helper.make_node("Add", [cur, "c"], ["y"], name="last"))
        cur = "y"
    graph = helper.make_graph(nodes, "chain", [_float("x", list(shape))],
                              [_float(cur, list(shape))], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def external_conv(location: str | None, entries: tuple[tuple[str, str], ...] = (),
                  dims: tuple[int, ...] = (2, 1, 1, 1)) -> bytes:
    """A 1x1 Conv (1 -> 2 channels, input (1, 1, 4, 4)) whose kernel W is external data at
    `location` (its entries after it as given: more keys, or a second location)."""
    tensor = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=list(dims))
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in ((("location", location),) if location is not None else ()) + entries:
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    conv = helper.make_node("Conv", ["x", "W"], ["y"], name="conv")
    graph = helper.make_graph([conv], "g", [_float("x", [1, 1, 4, 4])],
                              [_float("y", [1, 2, 4, 4])], [tensor])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]) \
        .SerializeToString()


EXTERNAL_W = np.array([2.0, -3.0], np.float32).reshape(2, 1, 1, 1)
"""The kernel external_conv's data files hold."""


def _hostile_onnx(w: _Writer) -> None:
    """ONNX files a hostile tester made (issue 17): malformed nodes, graphs past the limits,
    external data that lies, settings that cannot be saved."""
    x8 = [_float("x", [1, 1, 8, 8])]
    scalar = numpy_helper.from_array(np.array(1.0, np.float32), "W")
    w.data("conv-scalar-kernel.onnx", "onnx", ("conv node 'conv'", "weight tensor (0)",
                                               "export the model again"),
           _graph_model([helper.make_node("Conv", ["x", "W"], ["y"], name="conv")], x8,
                        [scalar], check=False))
    w.data("conv-scalar-kernel-shape.onnx", "onnx", ("conv node 'conv'", "export the model again"),
           _graph_model([helper.make_node("Conv", ["x", "W"], ["y"], name="conv",
                                          kernel_shape=[3, 3])], x8, [scalar], check=False))
    w.data("maxpool-no-kernel.onnx", "onnx", ("maxpool node 'pool'", "kernel_shape", "requires"),
           _graph_model([helper.make_node("MaxPool", ["x"], ["y"], name="pool")], x8,
                        check=False))
    kernel = numpy_helper.from_array(np.ones((2, 1, 3, 3), np.float32), "W")
    w.data("conv-kernel-shape-floats.onnx", "onnx", ("kernel_shape", "floats", "ints"),
           _graph_model([helper.make_node("Conv", ["x", "W"], ["y"], name="conv",
                                          kernel_shape=[3.0, 3.0])], x8, [kernel], check=False))
    untyped = helper.make_node("Relu", ["x"], ["y"], name="relu")
    untyped.attribute.add().name = "colour"  # an attribute without a type
    w.data("attribute-no-type.onnx", "onnx", ("'colour'", "no type"),
           _graph_model([untyped], x8, check=False))
    flat = [_float("x", [1, 4])]
    ones = numpy_helper.from_array(np.ones((4, 3), np.float32), "B")
    for name, alpha in (("inf", 1e39), ("nan", float("nan"))):  # 1e39 is infinite as float32
        w.data(f"gemm-alpha-{name}.onnx", "onnx", ("gemm node 'gemm'", "alpha", "nan or infinity"),
               _graph_model([helper.make_node("Gemm", ["x", "B"], ["y"], name="gemm", alpha=alpha)],
                            flat, [ones], out_shape=[1, 3], check=False))
    w.data("leaky-alpha-nan.onnx", "onnx", ("leakyrelu node 'leaky'", "alpha"),
           _graph_model([helper.make_node("LeakyRelu", ["x"], ["y"], name="leaky",
                                          alpha=float("nan"))], x8, check=False))
    big = numpy_helper.from_array(np.full((4, 3), 1e10, np.float32), "B")
    w.data("gemm-product-overflows.onnx", "onnx", ("gemm node 'gemm'", "weight w", "infinite"),
           _graph_model([helper.make_node("Gemm", ["x", "B"], ["y"], name="gemm", alpha=1e30)],
                        flat, [big], out_shape=[1, 3]))
    double = numpy_helper.from_array(np.full((1, 1, 1, 1), 1e39, np.float64), "c64")
    w.data("constant-overflows-float32.onnx", "onnx", ("mul node 'scale'", "weight c", "infinite"),
           _graph_model([helper.make_node("Cast", ["c64"], ["c"], name="cast",
                                          to=TensorProto.FLOAT),
                         helper.make_node("Mul", ["x", "c"], ["y"], name="scale")], x8, [double]))
    relu = helper.make_node("Relu", ["x"], ["y"], name="relu")
    graph = helper.make_graph([relu], "g", x8, [])
    w.data("no-outputs.onnx", "onnx", "no outputs",
           helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
           .SerializeToString())
    graph = helper.make_graph([relu], "g", x8, [_float("zzz", [1, 1, 8, 8])])
    w.data("output-unknown.onnx", "onnx", ("'zzz'", "nothing in the file gives"),
           helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
           .SerializeToString())
    graph = helper.make_graph([], "g", x8, [_float("x", [1, 1, 8, 8])])
    w.data("output-is-input.onnx", "onnx", ("'x'", "its input unchanged"),
           helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
           .SerializeToString())
    w.data("tensor-written-twice.onnx", "onnx", ("'y'", "written twice", "'relu'", "'sigmoid'"),
           _graph_model([relu, helper.make_node("Sigmoid", ["x"], ["y"], name="sigmoid")], x8,
                        check=False))
    w.data("input-overwritten.onnx", "onnx", ("'x'", "written twice", "the graph's input"),
           _graph_model([relu, helper.make_node("Relu", ["y"], ["x"], name="again")], x8,
                        check=False))
    w.data("residual-300-bad-constant.onnx", "onnx", ("'badreshape'", "constants only"),
           residual_chain(300, bad_constant=True).SerializeToString())
    long = "n" * 1_000_000
    w.data("long-node-name.onnx", "onnx", ("node name", "1,000,000 characters", "1,000"),
           _graph_model([helper.make_node("Relu", ["x"], ["y"], name=long)], x8))
    w.data("long-tensor-name.onnx", "onnx", ("tensor name", "1,000,000 characters"),
           _graph_model([helper.make_node("Add", ["x", long], ["y"], name="add")], x8,
                        check=False))
    chain = [helper.make_node("Relu", ["x" if i == 0 else f"t{i - 1}"], [f"t{i}"])
             for i in range(MAX_NODES + 1)]
    w.data("too-many-nodes.onnx", "onnx", f"more than {MAX_NODES:,} nodes",
           _graph_model(chain, x8, check=False))
    _hostile_external(w)


def _hostile_external(w: _Writer) -> None:
    (w.folder / "ext-w.bin").write_bytes(EXTERNAL_W.tobytes())
    w.data("ext-nul.onnx", "onnx", ("'W'", "nul character"), external_conv("ext-w\x00.bin"))
    w.data("ext-two-locations.onnx", "onnx", ("'W'", "'location' twice"),
           external_conv("ext-w.bin", (("location", "../../etc/passwd"),)))
    (w.folder / "ext-loop.bin").symlink_to("ext-loop.bin")
    w.data("ext-link-loop.onnx", "onnx", ("'W'", "loop of links"), external_conv("ext-loop.bin"))
    (w.folder / "ext-folder.bin").mkdir()
    w.data("ext-not-a-file.onnx", "onnx", ("'W'", "not a regular file"),
           external_conv("ext-folder.bin"))
    w.data("ext-offset-text.onnx", "onnx", ("'W'", "offset 'abc'"),
           external_conv("ext-w.bin", (("offset", "abc"),)))
    w.data("ext-negative-size.onnx", "onnx", ("'W'", "negative"),
           external_conv("ext-w.bin", dims=(-2, 1, 1, 1)))
    w.data("ext-huge-dims.onnx", "onnx", ("'W'", "shorter than"),
           external_conv("ext-w.bin", dims=(1 << 40, 1 << 40, 1, 1)))
    with open(w.folder / "ext-sparse.bin", "wb") as sparse:
        sparse.truncate(8 << 30)  # 8 GiB that take no disk space
    w.data("ext-sparse-8gib.onnx", "onnx", ("8.6 GB", "memory budget"),
           external_conv("ext-sparse.bin", dims=(1 << 31, 1, 1, 1)))


# ---- inputs -----------------------------------------------------------------------------------

def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height of 8-bit grey (Pillow writes no empty images)."""
    return (b"\x89PNG\r\n\x1a\n"
            + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + _chunk(b"IDAT", zlib.compress(b"")) + _chunk(b"IEND", b""))


def _images(w: _Writer) -> None:
    rng = np.random.default_rng(3)
    image = Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8))
    encoded = {}
    for fmt, suffix in (("PNG", "png"), ("JPEG", "jpg"), ("BMP", "bmp")):
        path = w.folder / f"whole.{suffix}"
        image.save(path, format=fmt)
        encoded[suffix] = path.read_bytes()
        path.unlink()
    for suffix, data in encoded.items():
        for keep in (20, len(data) // 2, len(data) - 200):
            w.data(f"cut-at-{keep}.{suffix}", "input", "image", data[:keep])
    w.data("empty.png", "input", "empty", b"")
    w.data("text.png", "input", "not an image", b"a text file that says it is a PNG\n")
    w.data("random.jpg", "input", "not an image", rng.bytes(5000))
    w.data("zero-width.png", "input", "image", _png_header_only(0, 20))
    w.data("zero-height.png", "input", "image", _png_header_only(20, 0))
    w.add("huge.png", "input", ("20000x20000", "megapixels", "downscale"),
          lambda path: write_half_white_png(path, 20000, 20000))
    w.add("folder.png", "input", "folder", lambda path: path.mkdir())
    w.data("text.csv", "input", "numbers", b"time,value\nnoon,high\n")
    w.data("empty.csv", "input", "no numbers", b"")
    w.data("cut.wav", "input", "wav", b"RIFF\x24\x00\x00\x00WAVEfmt ")

    def wav_8_channels(path: Path) -> None:
        with wave.open(str(path), "wb") as audio:
            audio.setnchannels(8)
            audio.setsampwidth(2)
            audio.setframerate(8000)
            audio.writeframes(bytes(8 * 2 * 10))
    w.add("wide.wav", "input", "spatial axes", wav_8_channels)


def _arrays(w: _Writer) -> None:
    def save(name: str, words: tuple[str, ...] | str, array: np.ndarray,
             allow_pickle: bool = False) -> None:
        w.add(name, "input", words, lambda path: np.save(path, array, allow_pickle=allow_pickle))

    save("scalar.npy", "shape ()", np.array(1.5, np.float32))
    save("five-axes.npy", "(1, 1, 1, 32, 32)", np.zeros((1, 1, *LENET_INPUT), np.float32))
    save("six-axes.npy", "(1, 1, 1, 1, 32, 32)", np.zeros((1, 1, 1, 1, 32, 32), np.float32))
    save("three-channels.npy", "(3, 32, 32)", np.zeros((3, 32, 32), np.float32))
    save("wrong-size.npy", "(1, 28, 28)", np.zeros((1, 28, 28), np.float32))
    save("no-values.npy", "no values", np.zeros((0, *LENET_INPUT), np.float32))
    save("complex.npy", "complex128", np.zeros(LENET_INPUT, np.complex128))
    save("bool.npy", "bool", np.zeros(LENET_INPUT, bool))
    save("text.npy", "<U1", np.full(LENET_INPUT, "a"))
    save("records.npy", "real numbers", np.zeros(LENET_INPUT, [("x", "<f4"), ("y", "<f4")]))
    save("dates.npy", "datetime64", np.zeros(LENET_INPUT, "datetime64[s]"))
    save("objects.npy", "object", np.array([{"run": "code"}] * 3, dtype=object),
         allow_pickle=True)
    whole = w.folder / "whole.npy"
    np.save(whole, np.zeros(LENET_INPUT, np.float64))
    data = whole.read_bytes()
    whole.unlink()
    w.data("cut-in-magic.npy", "input", ".npy", data[:4])
    w.data("cut-in-header.npy", "input", ".npy", data[:40])
    w.data("cut-in-data.npy", "input", ("truncated", "1,024 float64"), data[:-8])
    w.data("empty.npy", "input", ".npy", b"")
    w.data("random.npy", "input", ".npy", np.random.default_rng(4).bytes(600))

    def terabytes(path: Path) -> None:
        """A header promising 10^12 float32 values, followed by a few bytes."""
        with open(path, "wb") as file:
            np.lib.format.write_array_header_1_0(
                file, {"descr": "<f4", "fortran_order": False, "shape": (1, 1_000_000, 1_000_000)})
            file.write(bytes(64))
    w.add("terabytes.npy", "input", ("1,000,000,000,000 values", "more than"), terabytes)
    w.data("bad-header.npy", "input", ".npy",
           data.replace(b"(1, 32, 32)", b"(1, 32, 32 "))


def write_bad_files(folder: Path) -> list[BadFile]:
    """Every bad file, written into folder (which must be empty)."""
    writer = _Writer(folder)
    _projects(writer)
    _onnx(writer)
    _hostile_onnx(writer)
    _images(writer)
    _arrays(writer)
    return writer.files
