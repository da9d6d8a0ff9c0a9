"""Files whose node names carry no scope (Caffe2 exports name them n0, n1...) open with groups
read from their weights' names; files whose node names do carry scopes keep them."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from architectures import light_models
from engine.onnx.importer import import_model

LIGHT = {m.path.stem: m for m in light_models()}


def _conv_bn_relu(node_names: tuple[str, str, str]) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    weights = [numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)
               for name, shape in (("stem/conv_w_0", (4, 3, 3, 3)), ("stem/conv_b_0", (4,)),
                                   ("stem/bn_scale_0", (4,)), ("stem/bn_bias_0", (4,)),
                                   ("stem/bn_mean_0", (4,)))]
    weights.append(numpy_helper.from_array(np.ones(4, np.float32), "stem/bn_var_0"))
    nodes = [
        helper.make_node("Conv", ["x", "stem/conv_w_0", "stem/conv_b_0"], ["c"],
                         name=node_names[0], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", "stem/bn_scale_0", "stem/bn_bias_0",
                                                "stem/bn_mean_0", "stem/bn_var_0"], ["b"],
                         name=node_names[1]),
        helper.make_node("Relu", ["b"], ["y"], name=node_names[2]),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])], weights)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_unscoped_nodes_are_grouped_by_the_weights_they_read(tmp_path):
    path = tmp_path / "caffe2_style.onnx"
    onnx.save(_conv_bn_relu(("n0", "n1", "n2")), path)
    groups = [layer.group for layer in import_model(path).layers]
    # The ReLU reads no weight: it continues the batch norm's scope. The conv's own scope
    # (stem/conv) holds only it, so, as for any imported name, its group is the scope above.
    assert groups == ["stem", "stem/bn", "stem/bn"]


def test_scoped_node_names_win_over_weight_names(tmp_path):
    path = tmp_path / "pytorch_style.onnx"
    onnx.save(_conv_bn_relu(("/features/0/conv/Conv", "/features/0/bn/BN", "/features/0/Relu")),
              path)
    groups = [layer.group for layer in import_model(path).layers]
    assert all(g.startswith("features/0") for g in groups), groups
    assert not any("stem" in g for g in groups)


def test_densenet121_opens_with_its_dense_layers_and_transitions_as_groups():
    stack = import_model(LIGHT["light_densenet121"].path)
    tops = {layer.group.split("/")[0] for layer in stack.layers if layer.group}
    dense_layers = {f"conv{stage}_{i}" for stage, count in ((2, 6), (3, 12), (4, 24), (5, 16))
                    for i in range(1, count + 1)}
    assert dense_layers <= tops
    assert {"conv1", "conv2_blk", "conv3_blk", "conv4_blk"} <= tops
