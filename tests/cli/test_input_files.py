"""Reading inputs from files: arrays, images in every common mode, 1D signals, and bad files."""
from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine import input_files
from engine.input_files import load_input
from models.errors import ConfigError, FileFormatError
from models.stack import InputSpec


def image_file(tmp_path: Path, array: np.ndarray, mode: str, name: str = "in.png") -> Path:
    path = tmp_path / name
    image = Image.fromarray(array)
    assert image.mode == mode  # Pillow picks the mode from the dtype and the last axis
    image.save(path)
    return path


def test_grey_png_to_one_and_three_channels(tmp_path):
    grey = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    path = image_file(tmp_path, grey, "L")
    one = load_input(path, InputSpec(1, (8, 8)))
    assert one.shape == (1, 1, 8, 8) and one.dtype == np.float32
    np.testing.assert_allclose(one[0, 0], grey / 255.0, atol=1e-7)
    three = load_input(path, InputSpec(3, (8, 8)))
    assert three.shape == (1, 3, 8, 8) and (three == one).all()


def test_rgb_png_to_grey_uses_luma(tmp_path):
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 255, 128, 0
    grey = load_input(image_file(tmp_path, rgb, "RGB"), InputSpec(1, (4, 4)))
    assert grey[0, 0] == pytest.approx(np.full((4, 4), 0.299 + 0.587 * 128 / 255), abs=1e-6)


def test_rgba_png_keeps_or_drops_alpha(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 51
    path = image_file(tmp_path, rgba, "RGBA")
    four = load_input(path, InputSpec(4, (4, 4)))
    assert four[0, 3] == pytest.approx(np.full((4, 4), 0.2))
    three = load_input(path, InputSpec(3, (4, 4)))
    assert three.shape == (1, 3, 4, 4) and three[0, 0] == pytest.approx(np.full((4, 4), 200 / 255))
    opaque = load_input(image_file(tmp_path, rgba[..., :3].copy(), "RGB", "rgb.png"),
                        InputSpec(4, (4, 4)))
    assert (opaque[0, 3] == 1.0).all()


def test_16_bit_png_uses_the_full_range(tmp_path):
    deep = np.array([[0, 32768], [65535, 1000]], np.uint16)
    path = image_file(tmp_path, deep, "I;16")
    x = load_input(path, InputSpec(1, (2, 2)))
    np.testing.assert_allclose(x[0, 0], deep / 65535.0, rtol=1e-6)


def test_resize_stretches_and_keeps_values_in_range(tmp_path):
    rng = np.random.default_rng(0)
    path = image_file(tmp_path, rng.integers(0, 256, (30, 60, 3), dtype=np.uint8), "RGB")
    x = load_input(path, InputSpec(3, (16, 20)), mode="resize")
    assert x.shape == (1, 3, 16, 20) and 0.0 <= x.min() and x.max() <= 1.0
    flat = load_input(image_file(tmp_path, np.full((30, 60), 100, np.uint8), "L", "flat.png"),
                      InputSpec(1, (16, 20)))
    assert flat == pytest.approx(np.full((1, 1, 16, 20), 100 / 255), abs=1e-6)


def test_crop_cuts_the_centre_at_full_resolution(tmp_path):
    ramp = (np.arange(40)[None, :] + 4 * np.arange(40)[:, None]).astype(np.uint8)
    path = image_file(tmp_path, ramp, "L")
    x = load_input(path, InputSpec(1, (20, 10)), mode="crop")
    np.testing.assert_allclose(x[0, 0], ramp[10:30, 15:25] / 255.0, atol=1e-7)


def test_crop_scales_a_small_image_up_to_cover(tmp_path):
    path = image_file(tmp_path, np.full((10, 20), 50, np.uint8), "L")
    x = load_input(path, InputSpec(1, (20, 20)), mode="crop")
    assert x.shape == (1, 1, 20, 20) and x == pytest.approx(np.full(x.shape, 50 / 255), abs=1e-6)


def test_corrupt_image_names_the_file(tmp_path):
    path = tmp_path / "broken.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(FileFormatError, match="broken.png"):
        load_input(path, InputSpec(3, (8, 8)))


def test_huge_image_is_refused_before_decoding(tmp_path, monkeypatch):
    path = image_file(tmp_path, np.zeros((20, 20), np.uint8), "L")
    monkeypatch.setattr(input_files, "MAX_PIXELS", 399)
    with pytest.raises(FileFormatError, match="20x20 pixels"):
        load_input(path, InputSpec(1, (8, 8)))


def test_image_needs_a_2d_stack_with_image_channels(tmp_path):
    path = image_file(tmp_path, np.zeros((8, 8), np.uint8), "L")
    with pytest.raises(ConfigError, match="spatial axes"):
        load_input(path, InputSpec(1, (8,)))
    with pytest.raises(ConfigError, match="has 5"):
        load_input(path, InputSpec(5, (8, 8)))


def test_npy_sample_gets_a_batch_axis_and_batches_pass(tmp_path):
    np.save(tmp_path / "one.npy", np.ones((3, 4, 5), np.float64))
    x = load_input(tmp_path / "one.npy", InputSpec(3, (4, 5)))
    assert x.shape == (1, 3, 4, 5) and x.dtype == np.float32
    np.save(tmp_path / "two.npy", np.ones((2, 3, 4, 5), np.int16))
    assert load_input(tmp_path / "two.npy", InputSpec(3, (4, 5))).shape == (2, 3, 4, 5)


def test_npy_of_the_wrong_rank_or_kind(tmp_path):
    np.save(tmp_path / "flat.npy", np.ones((4, 5), np.float32))
    with pytest.raises(ConfigError, match=r"flat.npy holds an array of shape \(4, 5\)"):
        load_input(tmp_path / "flat.npy", InputSpec(3, (4, 5)))
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(FileFormatError, match="objects.npy"):
        load_input(tmp_path / "objects.npy", InputSpec(1, (1,)))
    np.save(tmp_path / "mask.npy", np.ones((1, 4), bool))
    with pytest.raises(FileFormatError, match="bool"):
        load_input(tmp_path / "mask.npy", InputSpec(1, (4,)))


def test_unknown_suffix_and_missing_file(tmp_path):
    with pytest.raises(FileFormatError, match="use one of"):
        load_input(tmp_path / "x.tiff", InputSpec(1, (4, 4)))
    with pytest.raises(FileFormatError, match="gone.npy: no such file"):
        load_input(tmp_path / "gone.npy", InputSpec(1, (4, 4)))


def test_csv_columns_are_channels(tmp_path):
    path = tmp_path / "signal.csv"
    path.write_text("\n".join(f"{i},{-i}" for i in range(6)))
    x = load_input(path, InputSpec(2, (6,)))
    np.testing.assert_array_equal(x[0], [np.arange(6), -np.arange(6)])
    cropped = load_input(path, InputSpec(2, (4,)), mode="crop")
    np.testing.assert_array_equal(cropped[0, 0], [1, 2, 3, 4])
    stretched = load_input(path, InputSpec(1, (11,)))  # two channels averaged to one
    np.testing.assert_allclose(stretched[0, 0], np.zeros(11), atol=1e-7)


def test_wav_16_bit_stereo(tmp_path):
    path = tmp_path / "tone.wav"
    samples = np.array([[0, 16384], [-32768, 32767], [8192, -8192]], "<i2")  # frames x channels
    with wave.open(str(path), "wb") as audio:
        audio.setnchannels(2)
        audio.setsampwidth(2)
        audio.setframerate(8000)
        audio.writeframes(samples.tobytes())
    x = load_input(path, InputSpec(2, (3,)))
    np.testing.assert_allclose(x[0], samples.T / 32768.0)


def test_unreadable_wav(tmp_path):
    path = tmp_path / "noise.wav"
    path.write_bytes(b"RIFF....WAVEjunk")
    with pytest.raises(FileFormatError, match="noise.wav"):
        load_input(path, InputSpec(1, (8,)))
