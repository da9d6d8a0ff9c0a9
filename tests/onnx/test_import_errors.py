"""Files the importer must refuse with a FileFormatError that names the file and the problem."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from engine.onnx_export import export_model
from engine.onnx_import import import_model
from models.errors import FileFormatError
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


def test_unsupported_ops_are_listed_with_node_names():
    model = export_model(PRESETS["LeNet-5"].build())
    for node in model.graph.node:
        if node.name == "tanh2":
            node.op_type = "Elu"
        if node.name == "avgpool2":
            node.op_type = "LpPool"
    with pytest.raises(FileFormatError, match=r"Elu \(tanh2\).*LpPool \(avgpool2\)"):
        import_model(model)


def test_an_add_outside_any_block_names_its_node():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 4])
    bias = numpy_helper.from_array(np.ones((1, 2, 4), np.float32), "bias")
    graph = helper.make_graph([helper.make_node("Add", ["x", "bias"], ["y"], name="shift")],
                              "g", [x], [y], initializer=[bias])
    with pytest.raises(FileFormatError, match="Add node 'shift'"):
        import_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))


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


def test_two_runtime_inputs_are_refused():
    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, 2, 4])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 2, 4])
    graph = helper.make_graph([helper.make_node("Add", ["a", "b"], ["y"])], "g", [a, b],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 4])])
    with pytest.raises(FileFormatError, match=r"one input, but the graph has 2 \(a, b\)"):
        import_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
