"""Build and run single-node ONNX models, to serve as references for the
kernels in ``engine.ops``.

Every input is a float32 graph input (no initializers), so the same model can
be fed to ``onnx.reference.ReferenceEvaluator`` and to onnxruntime.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

__all__ = [
    "OPSET",
    "make_single_op_model",
    "run_onnxruntime",
    "run_reference",
]

# Opset 19 introduced the current pooling rules (dilations on AveragePool, the
# ceil-mode "last window must start inside" rule); 21 is well inside what
# both onnx 1.23 and the installed onnxruntime support.
OPSET = 21
# IR version matching OPSET, so an older onnxruntime does not refuse the model.
IR_VERSION = 10


def make_single_op_model(
    op_type: str,
    inputs: dict[str, np.ndarray | None],
    attributes: dict[str, object] | None = None,
    n_outputs: int = 1,
) -> onnx.ModelProto:
    """One ``op_type`` node reading ``inputs`` (in order) and writing y0, y1, ...

    A ``None`` input is passed to the node as the empty name (an omitted
    optional input) when more inputs follow, and dropped when it is last.
    Attributes whose value is None are left out (the operator's default).
    """
    names: list[str] = []
    graph_inputs = []
    for name, value in inputs.items():
        if value is None:
            names.append("")
            continue
        names.append(name)
        graph_inputs.append(
            helper.make_tensor_value_info(name, TensorProto.FLOAT, list(value.shape))
        )
    while names and names[-1] == "":
        names.pop()
    outputs = [f"y{i}" for i in range(n_outputs)]
    attrs = {k: v for k, v in (attributes or {}).items() if v is not None}
    node = helper.make_node(op_type, names, outputs, **attrs)
    graph = helper.make_graph(
        [node],
        f"single_{op_type}",
        graph_inputs,
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    # Strict shape inference validates the node and its attributes (the full
    # checker would insist on declared output shapes, which we leave open).
    onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    return model


def _feeds(inputs: dict[str, np.ndarray | None]) -> dict[str, np.ndarray]:
    return {k: np.asarray(v, dtype=np.float32) for k, v in inputs.items() if v is not None}


def run_reference(
    op_type: str, inputs: dict[str, np.ndarray | None], **attributes: object
) -> np.ndarray:
    """First output of ``op_type`` computed by onnx's ReferenceEvaluator."""
    from onnx.reference import ReferenceEvaluator

    model = make_single_op_model(op_type, inputs, attributes)
    return ReferenceEvaluator(model).run(None, _feeds(inputs))[0]


def run_onnxruntime(
    op_type: str, inputs: dict[str, np.ndarray | None], **attributes: object
) -> np.ndarray:
    """First output of ``op_type`` computed by onnxruntime (CPUExecutionProvider)."""
    import onnxruntime as ort

    model = make_single_op_model(op_type, inputs, attributes)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    return session.run(None, _feeds(inputs))[0]
