"""Reading an ONNX file for import: loading it safely, refusing what no stack can hold, and
bringing old opsets up to date where onnx's version converter can.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import helper, numpy_helper, version_converter

from models.errors import FileFormatError

TARGET_OPSET = 17
SUPPORTED_OPS = frozenset({
    "Conv", "ConvTranspose", "MaxPool", "AveragePool", "GlobalMaxPool", "GlobalAveragePool",
    "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Softmax", "Flatten", "Gemm", "MatMul", "Add",
    "BatchNormalization", "Mul", "Reshape", "Identity", "Dropout", "Constant"})
_DOMAINS = ("", "ai.onnx")

Source = str | os.PathLike | bytes | onnx.ModelProto


def load_supported(source: Source) -> tuple[onnx.ModelProto, int, str]:
    """(model, its default-domain opset, a label naming the file) for a model made only of
    supported inference-mode ops, upgraded to TARGET_OPSET where the converter can.

    Raises FileFormatError for missing, empty, truncated or non-ONNX files, external data outside
    the model's folder, weights that are damaged or hold NaN or infinite values, opsets newer
    than the installed onnx knows, unsupported ops (listed with their nodes) and training-mode
    nodes.
    """
    model, label, folder = _load(source)
    _load_external_data(model, label, folder)
    _check_tensors(model, label)
    opset = _default_opset(model, label)
    _refuse_unsupported(model.graph, label)
    _refuse_training(model.graph, opset, label)
    model, opset = _upgraded(model, opset)
    return model, opset, label


def _load(source: Source) -> tuple[onnx.ModelProto, str, Path | None]:
    """(model, how messages name it, the folder external data may come from)."""
    if isinstance(source, onnx.ModelProto):
        return source, "the ONNX model", None
    if isinstance(source, (bytes, bytearray)):
        data, label, folder = bytes(source), "the ONNX data", None
    else:
        path = Path(source)
        label = path.name or str(path)
        if not path.exists():
            raise FileFormatError(f"{label}: no such file ({path})")
        if path.is_dir():
            raise FileFormatError(f"{label} is a folder, not an ONNX file")
        try:
            data = path.read_bytes()
        except OSError as err:
            raise FileFormatError(f"cannot read {label}: {err.strerror or err}") from None
        folder = path.resolve().parent
    if not data:
        raise FileFormatError(f"{label} is empty; it is not an ONNX model")
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, ValueError):
        raise FileFormatError(f"{label} is not an ONNX model, or it is truncated (it cannot be "
                              f"decoded); export it again") from None
    if not model.HasField("graph") or not model.opset_import:
        raise FileFormatError(f"{label} is not an ONNX model (it has no graph or no opset)")
    return model, label, folder


def _external_tensors(model: onnx.ModelProto) -> list[onnx.TensorProto]:
    tensors = list(model.graph.initializer)
    for node in model.graph.node:
        tensors += [attr.t for attr in node.attribute if attr.HasField("t")]
    return [t for t in tensors if t.data_location == onnx.TensorProto.EXTERNAL]


def _load_external_data(model: onnx.ModelProto, label: str, folder: Path | None) -> None:
    """Read weights kept in external files, only from inside the model's own folder."""
    tensors = _external_tensors(model)
    if not tensors:
        return
    if folder is None:
        raise FileFormatError(f"{label} keeps its weights in external files; open it from its "
                              f"file on disk so they can be found")
    for tensor in tensors:
        location = next((e.value for e in tensor.external_data if e.key == "location"), "")
        target = (folder / location).resolve()
        if not location or Path(location).is_absolute() or folder not in target.parents:
            raise FileFormatError(f"{label}: the weights {tensor.name!r} point to {location!r}, "
                                  f"outside the model's folder; refusing to read them (keep "
                                  f"external data beside the model)")
        if not target.is_file():
            raise FileFormatError(f"{label}: the external data file {location!r} of "
                                  f"{tensor.name!r} is missing")
    try:
        onnx.external_data_helper.load_external_data_for_model(model, str(folder))
    except (OSError, ValueError) as err:
        raise FileFormatError(f"{label}: cannot read its external data: {err}") from None


def _check_tensors(model: onnx.ModelProto, label: str) -> None:
    """Refuse weights whose data does not match their shape, or that hold NaN or infinity.

    Both would otherwise surface later as a crash, or as a project that cannot be opened again
    (project files refuse non-finite weights)."""
    users: dict[str, str] = {}
    for node in model.graph.node:
        for name in node.input:
            users.setdefault(name, f"{node.op_type} node {node.name or 'unnamed'!r}")
    tensors = [(t, users.get(t.name, "no node")) for t in model.graph.initializer]
    tensors += [(a.t, f"Constant node {n.name or 'unnamed'!r}") for n in model.graph.node
                for a in n.attribute if a.HasField("t")]
    for tensor, user in tensors:
        where = f"{label}: the weight {tensor.name!r} (used by {user})"
        try:
            values = numpy_helper.to_array(tensor)
        except (ValueError, TypeError, KeyError) as err:
            raise FileFormatError(f"{where} is damaged: its data does not fit its shape "
                                  f"{list(tensor.dims)} ({err})") from None
        if values.dtype.kind in "fc" and not np.isfinite(values).all():
            bad = int(values.size - np.isfinite(values).sum())
            raise FileFormatError(f"{where} holds {bad:,} NaN or infinite value"
                                  f"{'' if bad == 1 else 's'}; ConvScope opens only finite weights")


def _default_opset(model: onnx.ModelProto, label: str) -> int:
    newest = onnx.defs.onnx_opset_version()
    for entry in model.opset_import:
        if entry.domain in _DOMAINS:
            if entry.version > newest:
                raise FileFormatError(f"{label} uses ONNX opset {entry.version}, newer than the "
                                      f"{newest} the installed onnx package knows; update onnx "
                                      f"or export the model at opset {newest} or lower")
            return int(entry.version)
    raise FileFormatError(f"{label} imports no standard ONNX opset")


def _refuse_unsupported(graph: onnx.GraphProto, label: str) -> None:
    bad = [n for n in graph.node if n.domain not in _DOMAINS or n.op_type not in SUPPORTED_OPS]
    if bad:
        listed = ", ".join(f"{n.op_type} ({n.name or 'unnamed'})" for n in bad[:12])
        more = f" and {len(bad) - 12} more" if len(bad) > 12 else ""
        raise FileFormatError(f"{label} uses operators ConvScope cannot import: {listed}{more}; "
                              f"supported are {', '.join(sorted(SUPPORTED_OPS))}")


def node_attributes(node: onnx.NodeProto) -> dict[str, Any]:
    values = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    return {k: v.decode() if isinstance(v, bytes) else v for k, v in values.items()}


def _refuse_training(graph: onnx.GraphProto, opset: int, label: str) -> None:
    """Training-mode Dropout and BatchNormalization compute something no stack layer does.

    Checked on the original graph: the version converter drops the old is_test flags.
    """
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        attrs = node_attributes(node)
        where = f"{label}: {node.op_type} {node.name or 'unnamed'!r}"
        if node.op_type in ("Dropout", "BatchNormalization") and attrs.get("is_test", 1) == 0:
            raise FileFormatError(f"{where} is in training mode (is_test=0); export the model "
                                  f"in evaluation mode")
        if node.op_type == "BatchNormalization" and attrs.get("training_mode", 0):
            raise FileFormatError(f"{where} is in training mode; export the model in "
                                  f"evaluation mode")
        if node.op_type == "BatchNormalization" and attrs.get("spatial", 1) != 1:
            raise FileFormatError(f"{where} normalises every position on its own (spatial=0); "
                                  f"ConvScope's BatchNorm has one statistic per channel")
        if node.op_type == "Dropout" and opset >= 12 and len(node.input) > 2 and node.input[2]:
            mode = constants.get(node.input[2])
            if mode is None or bool(mode):
                raise FileFormatError(f"{where} may run in training mode (its training_mode "
                                      f"input is not a constant false)")


def _op_types(model: onnx.ModelProto) -> set[str]:
    return {n.op_type for n in model.graph.node}


def _upgraded(model: onnx.ModelProto, opset: int) -> tuple[onnx.ModelProto, int]:
    """The model at TARGET_OPSET when onnx converts it into supported ops only, else as it is."""
    if opset >= TARGET_OPSET:
        return model, opset
    try:
        converted = version_converter.convert_version(model, TARGET_OPSET)
    except Exception:  # the converter raises bare RuntimeErrors and more for ops it cannot adapt
        return model, opset
    if not _op_types(converted) <= SUPPORTED_OPS:
        return model, opset
    return converted, TARGET_OPSET
