"""Files the importer must refuse with a FileFormatError that names the file and the problem."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from helpers import assert_close, ort_run
from onnx import TensorProto, helper, numpy_helper

from engine.onnx.export import export_model
from engine.executor import forward
from engine.onnx.importer import import_model
from models.errors import FileFormatError
from models.layers.opaque import Opaque
from models.presets import PRESETS


@pytest.fixture(scope="module")
def model_bytes() -> bytes:
    return export_model(PRESETS["LeNet-5"].build()).SerializeToString()


def test_missing_file(tmp_path):
    with pytest.raises(FileFormatError, match="nothere.onnx: no such file"):
        import_model(tmp_path / "nothere.onnx")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.onnx"
    path.write_bytes(b"")
    with pytest.raises(FileFormatError, match="empty.onnx is empty"):
        import_model(path)


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.999])
def test_truncated_file(tmp_path, model_bytes, keep):
    path = tmp_path / "cut.onnx"
    path.write_bytes(model_bytes[:int(len(model_bytes) * keep)])
    with pytest.raises(FileFormatError, match="cut.onnx"):
        import_model(path)


@pytest.mark.parametrize("data", [b"hello, this is a text file\n", b"\x08\x07",
                                  b"\x89PNG\r\n\x1a\n" + bytes(range(256))])
def test_not_onnx(tmp_path, data):
    path = tmp_path / "notes.onnx"
    path.write_bytes(data)
    with pytest.raises(FileFormatError, match="notes.onnx is not an ONNX model"):
        import_model(path)


def test_folder_is_not_a_file(tmp_path):
    with pytest.raises(FileFormatError, match="is a folder"):
        import_model(tmp_path)


def test_an_operator_outside_the_vocabulary_is_an_opaque_node():
    """It used to refuse the file; now onnxruntime computes that node."""
    model = export_model(PRESETS["LeNet-5"].build())
    for node in model.graph.node:
        if node.name == "tanh2":
            node.op_type = "Softsign"
        if node.name == "avgpool2":
            node.op_type = "LpPool"
            kept = [a for a in node.attribute if a.name in ("kernel_shape", "strides", "pads")]
            del node.attribute[:]
            node.attribute.extend(kept)
    stack = import_model(model)
    opaque = [(layer.name, layer.spec.op_type) for layer in stack.layers
              if isinstance(layer.spec, Opaque)]
    assert opaque == [("tanh2", "Softsign"), ("avgpool2", "LpPool")]
    x = np.random.default_rng(0).standard_normal(stack.input.shape).astype(np.float32)
    assert_close(forward(stack, x), ort_run(model, x)[0])


def test_an_add_of_a_constant_stores_its_operand():
    """An Add outside any block used to be refused; it is an Add with the stored operand C."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 4])
    bias = numpy_helper.from_array(np.ones((1, 2, 4), np.float32), "bias")
    graph = helper.make_graph([helper.make_node("Add", ["bias", "x"], ["y"], name="shift")],
                              "g", [x], [y], initializer=[bias])
    stack = import_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    (layer,) = stack.layers
    assert (layer.name, layer.spec.constant_shape, layer.spec.constant_first) == \
        ("shift", (1, 2, 4), True)
    np.testing.assert_array_equal(layer.weights["C"], np.ones((1, 2, 4), np.float32))


def _external_model(location: str) -> onnx.ModelProto:
    model = export_model(PRESETS["LeNet-5"].build())
    tensor = model.graph.initializer[0]
    tensor.ClearField("raw_data")
    tensor.ClearField("float_data")
    tensor.data_location = TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", location
    return model


@pytest.mark.parametrize("location", ["../secret.bin", "/etc/passwd", "sub/../../secret.bin"])
def test_external_data_outside_the_folder_is_refused(tmp_path, location):
    (tmp_path / "secret.bin").write_bytes(bytes(4096))
    folder = tmp_path / "models"
    folder.mkdir()
    path = folder / "ext.onnx"
    path.write_bytes(_external_model(location).SerializeToString())
    with pytest.raises(FileFormatError, match="outside the model's folder"):
        import_model(path)


def test_external_data_beside_the_model_is_read(tmp_path):
    stack = PRESETS["LeNet-5"].build()
    model = export_model(stack)
    onnx.save_model(model, str(tmp_path / "big.onnx"), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="big.weights", size_threshold=0)
    imported = import_model(tmp_path / "big.onnx")
    np.testing.assert_array_equal(imported.layers[0].weights["W"], stack.layers[0].weights["W"])
    with pytest.raises(FileFormatError, match="external files"):
        import_model((tmp_path / "big.onnx").read_bytes())


def _graph_model(nodes, inputs, outputs=("y",), initializers=()) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs,
                              [helper.make_tensor_value_info(o, TensorProto.FLOAT, None)
                               for o in outputs], initializer=list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


def test_a_cycle_is_refused_naming_at_most_three_nodes():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4])
    nodes = [helper.make_node("Add", ["x", "d"], ["a"], name="a"),
             *(helper.make_node("Relu", [src], [dst], name=dst)
               for src, dst in [("a", "b"), ("b", "c"), ("c", "d")]),
             helper.make_node("Relu", ["d"], ["y"], name="y")]
    with pytest.raises(FileFormatError) as err:
        import_model(_graph_model(nodes, [x]))
    assert _one_line(err).startswith("the ONNX model: the graph has a cycle (nodes that read "
                                     "their own results)")
    assert _one_line(err).endswith("'a', 'b', 'c' and 2 more")


def test_a_tensor_nothing_gives_is_refused():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4])
    nodes = [helper.make_node("Add", ["x", "ghost"], ["y"], name="add")]
    with pytest.raises(FileFormatError, match="reads the tensor 'ghost', which nothing in the "
                                              "file gives: 'add'$"):
        import_model(_graph_model(nodes, [x]))


@pytest.mark.parametrize("value, why", [
    (helper.make_tensor_value_info("x", TensorProto.INT64, [1, 2, 4]), "must be a float32"),
    (helper.make_tensor_value_info("x", TensorProto.FLOAT, None), "has no shape"),
    (onnx.ValueInfoProto(name="x"), "must be a float32"),
    (helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, "W"]),
     r"sizes \(\?, 2, \?\); every axis but the batch must be fixed"),
    (helper.make_tensor_value_info("x", TensorProto.FLOAT, [8]), "has 1 axis;"),
])
def test_an_input_no_network_can_take_is_refused(value, why):
    model = _graph_model([helper.make_node("Relu", ["x"], ["y"])], [value])
    with pytest.raises(FileFormatError, match=why):
        import_model(model)


def test_two_runtime_inputs_are_refused():
    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, 2, 4])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 2, 4])
    graph = helper.make_graph([helper.make_node("Add", ["a", "b"], ["y"])], "g", [a, b],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 4])])
    with pytest.raises(FileFormatError, match=r"one input, but the graph has 2 \(a, b\)"):
        import_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
