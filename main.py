"""ConvScope's entry point: no sub-command opens the app; a sub-command runs on the command line.

    convscope [--screenshot PNG]                  the app on the demo model
    convscope open FILE [--screenshot PNG]        the app on a project or an .onnx file
    convscope summary FILE [--input-shape N,C,H,W] [--json]
    convscope export FILE -o OUT.onnx [--opset N] [--verify]
    convscope infer FILE --input IN --output OUT.npy [--engine numpy|onnxruntime]
                         [--provider auto|cpu|cuda] [--layers DIR]
    convscope bench FILE [--input-shape N,C,H,W] [--json]

FILE is a project (.convscope), an .onnx file, or a preset's name ("demo", "lenet-5", ...) when
no such file exists. A mistake the user can fix (a missing or malformed file, an input of the
wrong shape, a stack that cannot compute) prints one line on stderr and exits with status 2;
a failed --verify exits with 1. Names from files are printed as models.errors.display_name shows
them (escaped, cut), so a name cannot act on the terminal; `--json` keeps them exact, escaped as
JSON escapes every character outside ASCII. The command line never imports Qt, and imports onnx and
onnxruntime only for the sub-commands that use them, so `summary` of a project starts quickly.
"""
from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from models.errors import ConfigError, FileFormatError, display_name

if TYPE_CHECKING:
    import numpy as np

    from models.analysis import StackReport
    from models.stack import Stack

PROG = "convscope"
USER_ERROR = 2
VERIFY_FAILED = 1
GUI_PACKAGES = ("PySide6", "shiboken6", "pyqtgraph")
MAX_MESSAGE_CHARS = 2_000  # an error line longer than this only buries its point


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are ConfigErrors: one line, status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise ConfigError(f"{message} (see {self.prog} --help)")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line on argv (default sys.argv[1:]); returns the exit status."""
    if isinstance(sys.stdout, io.TextIOWrapper) and sys.stdout.errors == "strict":
        # A terminal whose encoding lacks a character of a name shows it escaped, not a crash.
        sys.stdout.reconfigure(errors="backslashreplace")
    try:
        args = _parser().parse_args(argv)
        return args.handler(args)
    except SystemExit as done:  # --help and --version
        return done.code if isinstance(done.code, int) else 0
    except ConfigError as err:
        return _fail(str(err))
    except BrokenPipeError:
        # The reader (`| head`) left: silence the flush at exit, as the Python docs advise.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as err:
        where = f"{os.fsdecode(err.filename)}: " if err.filename else ""
        return _fail(f"{where}{err.strerror or err}")


def _fail(message: str, status: int = USER_ERROR) -> int:
    """Print message as one line on stderr, with nothing in it that acts on the terminal."""
    print(f"{PROG}: error: {display_name(message, MAX_MESSAGE_CHARS)}", file=sys.stderr)
    return status


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Design convolutional networks and see inside them.")
    parser.add_argument("--screenshot", metavar="PNG",
                        help="open the window, wait for the feature maps, save it to PNG and exit")
    parser.set_defaults(handler=_app, file=None)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    open_ = commands.add_parser("open", help="open a project or an .onnx file in the app")
    open_.add_argument("file", metavar="FILE")
    # SUPPRESS: a sub-parser's default would otherwise overwrite a --screenshot given before it.
    open_.add_argument("--screenshot", metavar="PNG", default=argparse.SUPPRESS)
    open_.set_defaults(handler=_app)

    summary = commands.add_parser("summary", help="one row per layer: shapes, parameters, MACs")
    _file_and_shape(summary)
    summary.add_argument("--json", action="store_true", help="print JSON instead of a table")
    summary.set_defaults(handler=_summary)

    export = commands.add_parser("export", help="write the stack as an ONNX model")
    export.add_argument("file", metavar="FILE")
    export.add_argument("-o", "--output", metavar="OUT.onnx", required=True)
    export.add_argument("--opset", type=int, default=17, metavar="N", help="ONNX opset (17)")
    export.add_argument("--verify", action="store_true",
                        help="compare onnxruntime with the engine, layer by layer")
    export.set_defaults(handler=_export)

    infer = commands.add_parser("infer", help="run the stack on an input file")
    infer.add_argument("file", metavar="FILE")
    infer.add_argument("--input", required=True, metavar="IN",
                       help="a .npy array (C,*spatial or N,C,*spatial), an image, .csv or .wav")
    infer.add_argument("--output", required=True, metavar="OUT.npy")
    infer.add_argument("--engine", choices=("numpy", "onnxruntime"), default="numpy")
    infer.add_argument("--provider", choices=("auto", "cpu", "cuda"),
                       help="onnxruntime's execution provider (auto)")
    infer.add_argument("--layers", metavar="DIR",
                       help="also write every layer's output as DIR/<index>_<name>.npy")
    infer.set_defaults(handler=_infer)

    bench = commands.add_parser("bench", help="time the engine against onnxruntime")
    _file_and_shape(bench)
    bench.add_argument("--json", action="store_true", help="print JSON instead of a table")
    bench.set_defaults(handler=_bench)
    return parser


def _file_and_shape(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE")
    parser.add_argument("--input-shape", metavar="N,C,H,W", type=_shape,
                        help="use this input shape instead of the stack's")


def _shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(part) for part in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a shape such as 1,3,224,224") from None
    return shape


# Sub-commands: each returns the exit status.

def _app(args: argparse.Namespace) -> int:
    if args.file is not None and not Path(args.file).is_file():
        raise FileFormatError(f"{args.file}: no such file")
    try:
        from gui.app import run_app
    except ModuleNotFoundError as err:
        package = (err.name or "").split(".")[0]
        if package not in GUI_PACKAGES:
            raise
        raise ConfigError(f"the app needs {package}, which is not installed (pip install "
                          f"convscope installs it); the sub-commands work without it, see "
                          f"{PROG} --help") from None
    return run_app(args.file, args.screenshot)


def _summary(args: argparse.Namespace) -> int:
    from models.analysis import analyse
    from models.summary_table import summary_json, summary_table
    report = analyse(_load_stack(args.file, args.input_shape))
    # ensure_ascii (json's default) escapes control, bidirectional and every non-ASCII character.
    print(json.dumps(summary_json(report), indent=2) if args.json else
          summary_table(_displayed(report)))
    if report.first_error is not None:
        return _fail(str(report.first_error))
    return 0


def _export(args: argparse.Namespace) -> int:
    from engine.onnx.export import save_model
    _check_writable(args.output)
    stack = _runnable(_load_stack(args.file))
    save_model(stack, args.output, opset=args.opset)
    print(f"wrote {args.output}: {len(stack.layers)} layers, opset {args.opset}")
    if not args.verify:
        return 0
    from engine.onnx.runner import OrtRunner
    from engine.onnx.verify import format_report, verify
    report = verify(stack, runner=OrtRunner(opset=args.opset))
    print(format_report(report))
    if not report.ok:
        worst = report.worst
        return _fail(f"the export differs from the engine by {worst.max_rel:.3e} (relative) at "
                     f"layer {worst.index + 1} ({worst.name})", VERIFY_FAILED)
    return 0


def _infer(args: argparse.Namespace) -> int:
    from engine.input_files import load_input
    from models.stack import InputSpec
    _check_writable(args.output)
    if args.layers is not None and Path(args.layers).exists() and not Path(args.layers).is_dir():
        raise ConfigError(f"--layers {args.layers} is a file; give a folder for the layer outputs")
    stack = _load_stack(args.file)
    layer_files = _layer_files(stack, Path(args.layers)) if args.layers is not None else []
    _check_output_apart(Path(args.output), layer_files)
    x = load_input(args.input, stack.input)
    if x.shape[0] != stack.input.batch:
        stack = stack.with_input(InputSpec(stack.input.channels, stack.input.spatial, x.shape[0]))
    if args.engine == "numpy":
        if args.provider is not None:
            raise ConfigError("--provider chooses onnxruntime's device; add --engine onnxruntime")
        import numpy as np

        from engine.executor import run
        with np.errstate(all="ignore"):  # NaN and overflow are reported below, once, by layer
            result = run(stack, x)
        if result.error is not None:
            raise result.error
        outputs, seconds, ran_on = result.outputs, sum(result.seconds), "the NumPy engine"
        final = result.output
    else:
        from engine.onnx.runner import OrtRunner
        ort_run = OrtRunner().run(stack, x, args.provider or "auto",
                                  layer_outputs=args.layers is not None)
        outputs, seconds = ort_run.outputs, ort_run.seconds
        ran_on = f"onnxruntime ({ort_run.provider})"
        final = ort_run.output
    _save_array(Path(args.output), final)
    print(f"wrote {args.output}: shape {tuple(final.shape)}, by {ran_on} in "
          f"{seconds * 1e3:.2f} ms")
    warning = _nonfinite_warning(stack, x, outputs, args)
    if warning is not None:
        print(f"{PROG}: warning: {warning}", file=sys.stderr)
    if args.layers is not None:
        from models.atomic import AtomicBatch
        directory = Path(args.layers)
        directory.mkdir(parents=True, exist_ok=True)
        # One flush to disk for all the files, not one per file (thousands for a large graph).
        with AtomicBatch() as batch:
            for path, output in zip(layer_files, outputs):
                batch.write(path, _npy_bytes(output))
        print(f"wrote {len(outputs)} layer outputs to {directory}")
    return 0


def _layer_files(stack: Stack, directory: Path) -> list[Path]:
    """Where `infer --layers` writes each layer's output: DIR/<index>_<name>.npy."""
    digits = len(str(len(stack.layers)))
    # Names from imported ONNX graphs may hold "/" or ":"; keep file names plain.
    return [directory / f"{i + 1:0{digits}d}_{re.sub(r'[^A-Za-z0-9._-]+', '_', layer.name)}.npy"
            for i, layer in enumerate(stack.layers)]


def _check_output_apart(output: Path, layer_files: list[Path]) -> None:
    """Refuse, before running, an --output that a layer's output file would write over. Names
    are compared case-blind: on the filesystems of macOS and Windows those are one file."""
    real = Path(os.path.realpath(output))  # outputs are written through symbolic links
    if not layer_files or not real.parent.is_dir() or not layer_files[0].parent.is_dir():
        return  # a --layers folder that does not exist yet cannot hold the existing --output folder
    if not os.path.samefile(real.parent, layer_files[0].parent):
        return
    wanted = real.name.casefold()
    for index, path in enumerate(layer_files):
        if path.name.casefold() == wanted:
            raise ConfigError(f"--output {display_name(str(output), None)} is the file --layers "
                              f"writes layer {index + 1}'s output to; choose another --output "
                              f"name or folder")


def _bench(args: argparse.Namespace) -> int:
    from engine.benchmark import benchmark, format_report, report_json
    from engine.memory_budget import check_budget
    from engine.onnx.verify import random_input
    from models.analysis import analyse
    stack = _load_stack(args.file, args.input_shape)
    check_budget(analyse(stack))  # before the weights and the input are drawn
    stack = _runnable(stack)
    report = benchmark(stack, random_input(stack))
    print(json.dumps(report_json(report), indent=2) if args.json else format_report(report))
    return 0


def _nonfinite_warning(stack: Stack, x: np.ndarray, outputs: list[np.ndarray],
                       args: argparse.Namespace) -> str | None:
    """Where NaN or infinite values start in the run, or None. onnxruntime without --layers
    gives only the final output: when it, or x, is not finite, every layer's is fetched to
    find the first."""
    import numpy as np

    from engine.nonfinite import nonfinite_warning
    names = [layer.name for layer in stack.layers]
    if len(outputs) != len(names):
        if all(np.isfinite(o).all() for o in outputs) and np.isfinite(x).all():
            return None
        from engine.onnx.runner import OrtRunner
        outputs = OrtRunner().run(stack, x, args.provider or "auto", layer_outputs=True).outputs
    return nonfinite_warning(x, outputs, names)


# Shared steps.

def _load_stack(file: str, input_shape: tuple[int, ...] | None = None) -> Stack:
    """The stack in a project or .onnx file, or a preset's when no such file exists; with the
    given input shape (N, C, *spatial) when there is one. Raises FileFormatError."""
    path = Path(file)
    if path.is_file():
        if path.suffix.lower() == ".onnx":
            from engine.onnx.importer import import_model
            stack = import_model(path)
        else:
            from models.project import load
            stack = load(path)
    elif path.exists():
        raise FileFormatError(f"{file} is a folder, not a project or an .onnx file")
    else:
        stack = _preset(file)
    if input_shape is not None:
        from models.stack import InputSpec
        stack = stack.with_input(InputSpec.from_shape(input_shape))
    return stack


def _preset(name: str) -> Stack:
    from models.presets import PRESETS, demo, vgg16
    wanted = _plain(name)
    if wanted == "demo":
        return demo()
    # Not in the app's preset menu (553 MB of weights), but the benchmarks' reference size.
    if wanted == "vgg16":
        return vgg16()
    for preset in PRESETS.values():
        if _plain(preset.name) == wanted:
            return preset.build()
    names = ", ".join(["demo"] + [p.name for p in PRESETS.values()][1:] + ["VGG-16"])
    raise FileFormatError(f"{name}: no such file (give a .convscope project, an .onnx file or a "
                          f"preset: {names})")


def _plain(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _runnable(stack: Stack) -> Stack:
    """The stack with every weight present; raises the first layer's ConfigError if it cannot
    compute."""
    from models.analysis import analyse
    from models.weights import materialise
    report = analyse(stack)
    if report.first_error is not None:
        raise report.first_error
    return materialise(stack, report)


def _check_writable(output: str) -> None:
    """Refuse, before any work, an output path whose folder is missing or that is a folder."""
    path = Path(output)
    if path.is_dir():
        raise ConfigError(f"the output {output} is a folder; give a file name inside it")
    folder = path.parent
    if not folder.is_dir():
        raise ConfigError(f"cannot write {output}: the folder {folder} does not exist; create it "
                          f"first")


def _displayed(report: StackReport) -> StackReport:
    """The report with every node name as display_name shows it, for a table on a terminal.
    Group names are escaped but not cut: the table totals nodes by group name."""
    def group(path: str) -> str:
        return "/".join(display_name(part, None) for part in path.split("/")) if path else ""
    return dataclasses.replace(report, layers=tuple(
        dataclasses.replace(r, name=display_name(r.name), group=group(r.group),
                            input_names=tuple(display_name(n) for n in r.input_names))
        for r in report.layers))


def _npy_bytes(array: np.ndarray) -> bytes:
    import numpy as np
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _save_array(path: Path, array: np.ndarray) -> None:
    """np.save's bytes, written atomically."""
    from models.atomic import write_atomic
    write_atomic(path, _npy_bytes(array))


if __name__ == "__main__":
    sys.exit(main())
