"""Writes ConvScope's built-in sample inputs into resources/samples/ (run from anywhere).

    pattern.png  256x256 RGB: checkerboard, stripes, circles and a gradient, one per quadrant,
                 so edge, blur and orientation filters each have something to respond to.
    signal.npy   (1, 512) float32: a linear chirp (4 to 60 cycles) plus a little noise.
    volume.npy   (1, 16, 64, 64) float32: a sphere and a cube in a faint noisy background.
    digit.png    28x28 grey: a handwritten-style "7", white on black as in MNIST, for small
                 one-channel stacks such as LeNet-5.

Deterministic (fixed seed): rerunning gives the same bytes, so the committed files can be checked.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SAMPLES = Path(__file__).resolve().parent / "samples"
SIZE = 256
DIGIT_SIZE = 28
DIGIT_SCALE = 4  # drawn this many times larger, then shrunk: smooth, antialiased strokes


def pattern() -> np.ndarray:
    """(256, 256, 3) uint8: four quadrants with different edges and textures."""
    half = SIZE // 2
    y, x = np.mgrid[0:half, 0:half].astype(np.float32)
    checker = ((y // 16 + x // 16) % 2).astype(np.float32)
    stripes = 0.5 + 0.5 * np.sin((x + y) * 2 * np.pi / 20)          # diagonal stripes
    radius = np.hypot(y - half / 2, x - half / 2)
    circles = (np.sin(radius * 2 * np.pi / 14) > 0).astype(np.float32)  # concentric rings
    gradient = x / (half - 1)
    rgb = np.zeros((SIZE, SIZE, 3), np.float32)
    rgb[:half, :half] = checker[..., None] * np.array([1.0, 0.9, 0.2])
    rgb[:half, half:] = stripes[..., None] * np.array([0.2, 0.8, 1.0])
    rgb[half:, :half] = circles[..., None] * np.array([1.0, 0.3, 0.5])
    rgb[half:, half:] = np.stack([gradient, 1 - gradient, y / (half - 1)], axis=-1)
    # A bright filled disc across the centre gives one object whose outline crosses textures.
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    rgb[np.hypot(yy - half, xx - half) < 34] = 1.0
    return (np.clip(rgb, 0, 1) * 255).round().astype(np.uint8)


def signal(rng: np.random.Generator) -> np.ndarray:
    """(1, 512) float32 chirp plus noise."""
    t = np.linspace(0, 1, 512, dtype=np.float64)
    chirp = np.sin(2 * np.pi * (4 * t + 28 * t ** 2))
    return (chirp + 0.1 * rng.standard_normal(t.size)).astype(np.float32)[np.newaxis]


def volume(rng: np.random.Generator) -> np.ndarray:
    """(1, 16, 64, 64) float32: a sphere (1.0) and a cube (0.6) over noise."""
    z, y, x = np.mgrid[0:16, 0:64, 0:64].astype(np.float32)
    vol = 0.05 * rng.standard_normal((16, 64, 64)).astype(np.float32)
    vol[np.sqrt(((z - 8) * 2) ** 2 + (y - 22) ** 2 + (x - 22) ** 2) < 14] = 1.0
    vol[(abs(z - 8) < 5) & (abs(y - 44) < 10) & (abs(x - 44) < 10)] = 0.6
    return vol[np.newaxis]


def digit() -> Image.Image:
    """A 28x28 "L" image of a "7": pen strokes drawn large with a slight slant and a crossbar,
    shrunk and blurred a little so the edges are soft like a scanned digit."""
    big = DIGIT_SIZE * DIGIT_SCALE
    canvas = Image.new("L", (big, big), 0)
    pen = ImageDraw.Draw(canvas)
    # In 28-pixel units, like MNIST: the digit fills about the central 20x20 box.
    top = [(6.5, 6.5), (13.0, 5.8), (21.0, 5.5)]
    stem = [(21.0, 5.5), (18.5, 11.0), (15.0, 17.0), (12.5, 22.5)]
    crossbar = [(11.0, 14.2), (19.5, 13.6)]
    for stroke in (top + stem[1:], crossbar):
        points = [(x * DIGIT_SCALE, y * DIGIT_SCALE) for x, y in stroke]
        pen.line(points, fill=255, width=int(2.4 * DIGIT_SCALE), joint="curve")
    small = canvas.resize((DIGIT_SIZE, DIGIT_SIZE), Image.Resampling.LANCZOS)
    return small.filter(ImageFilter.GaussianBlur(0.6))


def main() -> None:
    SAMPLES.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    Image.fromarray(pattern(), "RGB").save(SAMPLES / "pattern.png", optimize=True)
    np.save(SAMPLES / "signal.npy", signal(rng), allow_pickle=False)
    np.save(SAMPLES / "volume.npy", volume(rng), allow_pickle=False)
    digit().save(SAMPLES / "digit.png", optimize=True)


if __name__ == "__main__":
    main()
