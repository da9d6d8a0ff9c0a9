"""Runs a stack with onnxruntime: provider selection, and exported models and sessions cached.

A stack is exported once per (stack object, batch size, layer outputs or not) and each exported
model gets one session per provider. Stacks are immutable values, so a stack object that is still
cached is the same model; the cache holds the stack itself (not only its id), so an id reused by a
new object never hits an old entry.

CUDA runs in full fp32 by default (`use_tf32` is passed off explicitly, so results verify against
the NumPy engine at 1e-4); TF32 is a named option. See GPU.md for the measured trade.
"""
from __future__ import annotations

import os
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.executor import prepare_input
from engine.memory_budget import check_budget
from models.analysis import analyse
from models.errors import ConfigError
from models.stack import InputSpec, Stack
from models.weights import materialise

if TYPE_CHECKING:
    import onnxruntime

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
PROVIDER_NAMES = {"cpu": CPU, "cuda": CUDA}
DEFAULT_OPSET = 17
# Each cached stack holds its exported model and sessions (weights included): keep a few, so an
# editing session does not grow without bound, but undo/redo between recent versions stays warm.
CACHED_STACKS = 4

_dlls_preloaded = False


def _ort() -> Any:
    """The onnxruntime module, with pip-installed CUDA/cuDNN libraries preloaded once."""
    global _dlls_preloaded
    import onnxruntime
    if not _dlls_preloaded:
        _dlls_preloaded = True
        preload = getattr(onnxruntime, "preload_dlls", None)
        if preload is not None:
            try:
                preload()
            except Exception:  # noqa: BLE001 - a CPU-only machine: CUDA is then simply absent
                pass
    return onnxruntime


def available_providers() -> list[str]:
    """The execution providers this onnxruntime build can use, best first."""
    return list(_ort().get_available_providers())


def resolve_provider(name: str) -> str:
    """"auto" | "cpu" | "cuda" (or a full provider name) -> the onnxruntime provider name.

    auto: CUDAExecutionProvider when available, else CPUExecutionProvider. Raises ConfigError when
    cuda is asked for but this onnxruntime build or machine cannot provide it.
    """
    name = {full: short for short, full in PROVIDER_NAMES.items()}.get(name, name)
    if name not in ("auto", *PROVIDER_NAMES):
        raise ConfigError(f"provider must be auto, cpu or cuda, got {name!r}", field="provider")
    available = available_providers()
    if name == "auto":
        return CUDA if CUDA in available else CPU
    wanted = PROVIDER_NAMES[name]
    if wanted not in available:
        raise ConfigError("CUDA is not available to onnxruntime here: on a machine with an NVIDIA "
                          "GPU, install onnxruntime-gpu in place of onnxruntime (pip uninstall "
                          "onnxruntime; pip install onnxruntime-gpu; see the README)",
                          field="provider")
    return wanted


@dataclass(frozen=True)
class OrtRun:
    """One onnxruntime run: outputs[i] is layer i's output when layer outputs were asked for,
    else outputs holds only the network's first output. provider: the provider that actually ran
    the first node (session.get_providers()[0]); seconds: wall time of session.run; final: the
    index of the network's first output in outputs."""
    outputs: list[np.ndarray]
    provider: str
    seconds: float
    final: int = 0

    @property
    def output(self) -> np.ndarray:
        return self.outputs[self.final]


@dataclass
class _Entry:
    stack: Stack
    model: bytes
    output_names: list[str]
    sessions: dict[str, Any]


class OrtRunner:
    """Exports stacks to ONNX and runs them with onnxruntime, caching both steps.

    use_tf32: let CUDA use TF32 tensor cores (about 3x faster on big convolutions, about 1e-3
    relative difference); off by default. threads: intra-op threads for the CPU provider
    (default os.cpu_count()). Not thread-safe: one runner per worker.
    """

    def __init__(self, opset: int = DEFAULT_OPSET, use_tf32: bool = False,
                 threads: int | None = None) -> None:
        self.opset = opset
        self.use_tf32 = use_tf32
        self.threads = threads or os.cpu_count() or 1
        self._entries: OrderedDict[tuple[int, int, bool], _Entry] = OrderedDict()

    def session(self, stack: Stack, provider: str = "auto", batch: int | None = None,
                layer_outputs: bool = False) -> tuple[onnxruntime.InferenceSession, list[str]]:
        """The cached session for the stack at this batch size, and the graph outputs to fetch
        (every layer's output in order when layer_outputs, else the final one).

        Raises ConfigError when the stack cannot run or the provider is unavailable.
        """
        provider = resolve_provider(provider)
        entry = self._entry(stack, batch or stack.input.batch, layer_outputs)
        session = entry.sessions.get(provider)
        if session is None:
            session = self._new_session(entry.model, provider)
            entry.sessions[provider] = session
        return session, entry.output_names

    def run(self, stack: Stack, x: np.ndarray, provider: str = "auto",
            layer_outputs: bool = False) -> OrtRun:
        """Run the stack on x, float32 (N, C, *spatial) matching the stack's input (any N).

        Raises ConfigError when x does not fit, the stack cannot run, its outputs at x's batch
        would exceed the memory budget (engine.memory_budget, as for the NumPy engine), or the
        provider is missing.
        """
        x = prepare_input(stack, x)
        session, names = self.session(stack, provider, x.shape[0], layer_outputs)
        feed = {session.get_inputs()[0].name: x}
        start = time.perf_counter()
        outputs = session.run(names, feed)
        seconds = time.perf_counter() - start
        final = stack.output_indices[0] if layer_outputs else 0
        return OrtRun(list(outputs), session.get_providers()[0], seconds, final)

    def _entry(self, stack: Stack, batch: int, layer_outputs: bool) -> _Entry:
        key = (id(stack), batch, layer_outputs)
        entry = self._entries.get(key)
        if entry is not None and entry.stack is stack:
            self._entries.move_to_end(key)
            return entry
        entry = self._export(stack, batch, layer_outputs)
        self._entries[key] = entry
        # Drop the least recent stacks (all their batch sizes and variants) beyond the limit.
        while len({k[0] for k in self._entries}) > CACHED_STACKS:
            oldest = next(iter(self._entries))[0]
            for k in [k for k in self._entries if k[0] == oldest]:
                del self._entries[k]
        return entry

    def _export(self, stack: Stack, batch: int, layer_outputs: bool) -> _Entry:
        report = analyse(stack)
        if report.first_error is not None:
            raise report.first_error
        check_budget(report, batch=batch)  # once per cached session, not on every run
        from engine.onnx.export import export_model  # imports onnx: only when a run needs it
        sized = stack if batch == stack.input.batch else stack.with_input(
            InputSpec(stack.input.channels, stack.input.spatial, batch))
        model = export_model(materialise(sized), opset=self.opset, layer_outputs=layer_outputs)
        graph_outputs = [o.name for o in model.graph.output]
        if layer_outputs:
            names = [layer.name for layer in stack.layers]
            missing = [n for n in names if n not in graph_outputs]
            if missing:
                raise RuntimeError(f"the exported graph lacks the layer outputs {missing}")
        else:
            names = graph_outputs[:1]
        return _Entry(stack, model.SerializeToString(), names, {})

    def _new_session(self, model: bytes, provider: str) -> onnxruntime.InferenceSession:
        ort = _ort()
        options = ort.SessionOptions()
        options.log_severity_level = 3  # warnings about node placement are noise on a CLI
        if provider == CUDA:
            providers: list[Any] = [(CUDA, {"use_tf32": "1" if self.use_tf32 else "0"}), CPU]
        else:
            options.intra_op_num_threads = self.threads
            providers = [CPU]
        return ort.InferenceSession(model, options, providers=providers)
