"""Screenshots of the window as it opens real CNN graphs and two presets.

Run from the repository root:

    QT_QPA_PLATFORM=offscreen .venv/bin/python docs/graph_screenshots.py [--out FOLDER]

Writes resnet18.png, unet.png, inception.png and densenet121.png (the models the tests build
as PyTorch exports them, and onnx's own light DenseNet-121), volume-3d.png and text-cnn.png (two
presets) into FOLDER, build/graph-screenshots by default (ignored by git: the pixels depend on
the fonts installed); `--out docs/screenshots` refreshes the README's images. Each is the real
`convscope open FILE --screenshot PNG`, run in its own process.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import onnx  # noqa: E402

from models import project  # noqa: E402
from models.presets import PRESETS  # noqa: E402
from tests.onnx.architectures import inception_block, resnet18, unet  # noqa: E402

LIGHT = Path(onnx.__file__).parent / "backend/test/data/light"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build/graph-screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        sources = {}
        for name, build in (("resnet18", resnet18), ("unet", unet), ("inception", inception_block)):
            sources[name] = Path(folder) / f"{name}.onnx"
            onnx.save(build(), sources[name])
        sources["densenet121"] = LIGHT / "light_densenet121.onnx"
        for name, preset in (("volume-3d", "3D volume block"), ("text-cnn", "Text CNN with GLU")):
            sources[name] = Path(folder) / f"{name}.convscope"
            project.save(PRESETS[preset].build(), sources[name])
        for name, source in sources.items():
            target = args.out / f"{name}.png"
            subprocess.run([sys.executable, str(ROOT / "main.py"), "open", str(source),
                            "--screenshot", str(target)], check=True, cwd=ROOT)
            print(target)


if __name__ == "__main__":
    main()
