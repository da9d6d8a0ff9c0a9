"""Initialisers are deterministic and follow their variance rules; kernel presets do their job."""
from __future__ import annotations

import numpy as np
import pytest

from engine.executor import forward
from models.errors import ConfigError
from models.kernel_presets import PRESETS, apply_to_filter, gabor_bank, preset_kernel
from models.layers import Conv, Dense, Flatten
from models.stack import InputSpec, Stack
from models.weights import initialise, materialise, reinitialised


def conv_stack(seed: int = 0) -> Stack:
    return Stack(InputSpec(3, (16, 16)), seed=seed).appended(Conv(out_channels=64)) \
        .appended(Flatten()).appended(Dense(units=5))


def test_defaults_are_deterministic_and_seeded() -> None:
    a, b, c = materialise(conv_stack(1)), materialise(conv_stack(1)), materialise(conv_stack(2))
    assert np.array_equal(a.layers[0].weights["W"], b.layers[0].weights["W"])
    assert not np.array_equal(a.layers[0].weights["W"], c.layers[0].weights["W"])
    assert not np.any(a.layers[0].weights["B"])


def test_editing_one_layer_keeps_the_others_weights() -> None:
    stack = materialise(conv_stack())
    edited = materialise(stack.with_spec(2, Dense(units=7)))
    assert edited.layers[0] is stack.layers[0]
    assert edited.layers[2].weights["W"].shape == (7, 64 * 16 * 16)


def test_weights_are_read_only() -> None:
    weight = materialise(conv_stack()).layers[0].weights["W"]
    with pytest.raises(ValueError):
        weight[0, 0, 0, 0] = 1.0


@pytest.mark.parametrize("method,fan_in,fan_out", [("he_normal", 288, 576), ("he_uniform", 288, 576),
                                                   ("glorot_normal", 288, 576),
                                                   ("glorot_uniform", 288, 576)])
def test_variance_follows_the_rule(method: str, fan_in: int, fan_out: int) -> None:
    # A (64, 32, 3, 3) kernel: fan_in = 32*9 = 288, fan_out = 64*9 = 576.
    values = initialise((64, 32, 3, 3), method, np.random.default_rng(0))
    want = 2 / fan_in if method.startswith("he") else 2 / (fan_in + fan_out)
    assert values.dtype == np.float32
    assert values.var() == pytest.approx(want, rel=0.05)
    if method.endswith("uniform"):
        assert np.abs(values).max() <= np.sqrt(3 * want)


def test_reinitialised_uses_the_given_seed() -> None:
    shapes = {"W": (4, 2, 3, 3), "B": (4,)}
    one, again = reinitialised("c", shapes, "glorot_uniform", 5), reinitialised("c", shapes, "glorot_uniform", 5)
    assert np.array_equal(one["W"], again["W"])
    assert not np.array_equal(one["W"], reinitialised("c", shapes, "glorot_uniform", 6)["W"])


def run_kernel(kernel: np.ndarray, image: np.ndarray) -> np.ndarray:
    size = kernel.shape[0]
    stack = Stack(InputSpec(1, image.shape)).appended(Conv(out_channels=1, kernel_size=size,
                                                           padding="valid"))
    stack = materialise(stack)
    weight = apply_to_filter(stack.layers[0].weights["W"], 0, kernel)
    stack = stack.with_weights(0, {"W": weight, "B": np.zeros(1, np.float32)})
    return forward(stack, image[None, None].astype(np.float32))[0, 0]


def test_sobel_x_finds_vertical_edges_only() -> None:
    image = np.zeros((8, 8))
    image[:, 4:] = 1.0                      # a vertical edge between columns 3 and 4
    response = run_kernel(preset_kernel("sobel x", 3), image)
    assert np.abs(response[:, 2:4]).min() > 0   # windows that straddle the edge
    assert not response[:, [0, 1, 4, 5]].any()  # flat regions
    assert not run_kernel(preset_kernel("sobel y", 3), image).any()


@pytest.mark.parametrize("name", ["box blur", "gaussian blur", "identity", "sharpen"])
def test_smoothing_kernels_keep_a_flat_image(name: str) -> None:
    response = run_kernel(preset_kernel(name, 5), np.full((9, 9), 0.7))
    assert np.allclose(response, 0.7, atol=1e-6)


@pytest.mark.parametrize("name", ["laplacian", "sobel x", "sobel y", "prewitt x", "prewitt y"])
def test_derivative_kernels_ignore_a_flat_image(name: str) -> None:
    assert np.allclose(run_kernel(preset_kernel(name, 3), np.full((6, 6), 3.0)), 0, atol=1e-6)


def test_gabor_bank_is_zero_mean_at_distinct_angles() -> None:
    bank = gabor_bank(7, 4)
    assert bank.shape == (4, 7, 7)
    assert np.allclose(bank.sum(axis=(1, 2)), 0, atol=1e-6)
    assert not np.allclose(bank[0], bank[2])


def test_preset_on_rgb_filter_spreads_over_channels() -> None:
    weight = np.zeros((2, 3, 3, 3), np.float32)
    out = apply_to_filter(weight, 1, preset_kernel("laplacian", 3))
    assert np.allclose(out[1].sum(axis=0), preset_kernel("laplacian", 3))
    assert not out[0].any() and not weight.any()


def test_preset_errors() -> None:
    with pytest.raises(ConfigError):
        preset_kernel("emboss", 3)
    with pytest.raises(ConfigError):
        preset_kernel("sobel x", 5)
    with pytest.raises(ConfigError):
        apply_to_filter(np.zeros((1, 1, 5, 5), np.float32), 0, preset_kernel("sobel x", 3))
    assert set(PRESETS) >= {"identity", "box blur", "gaussian blur", "sharpen", "sobel x", "sobel y",
                            "prewitt x", "prewitt y", "laplacian"}


def test_gabor_on_a_grid_too_small_for_its_grating_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="no pattern on a 2x2 grid"):
        gabor_bank(2, 4)
    for size in (3, 4, 5):
        assert np.isfinite(gabor_bank(size, 8)).all()
