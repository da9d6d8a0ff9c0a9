"""Cross-correlation against true convolution: the helper against brute-force double loops, the
flipping identities, the layer's own numbers, and the panel's toggle under Qt."""
from __future__ import annotations

import numpy as np
import pytest

from engine.cross_correlation import SOBEL_X, convolve2d, correlate2d, flip, layer_example
from gui.explain_cross_correlation import CrossCorrelationPanel, Term
from gui.theme import apply_theme
from models.layers import Conv, MaxPool

SHAPES = [((5, 5), (3, 3)), ((6, 4), (2, 3)), ((4, 7), (4, 1)), ((1, 9), (1, 3)), ((3, 3), (3, 3))]


def brute_correlate(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """out[i, j] = sum over a, b of x[i + a, j + b] * k[a, b], by loops."""
    rows, cols = x.shape[0] - k.shape[0] + 1, x.shape[1] - k.shape[1] + 1
    out = np.zeros((rows, cols))
    for i in range(rows):
        for j in range(cols):
            for a in range(k.shape[0]):
                for b in range(k.shape[1]):
                    out[i, j] += x[i + a, j + b] * k[a, b]
    return out


def brute_convolve(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """True convolution, valid part: out[i, j] = sum x[i + kh-1 - a, j + kw-1 - b] * k[a, b]
    (the textbook sum of x[m - a] k[a], shifted so the output starts at the first full overlap)."""
    kh, kw = k.shape
    rows, cols = x.shape[0] - kh + 1, x.shape[1] - kw + 1
    out = np.zeros((rows, cols))
    for i in range(rows):
        for j in range(cols):
            for a in range(kh):
                for b in range(kw):
                    out[i, j] += x[i + kh - 1 - a, j + kw - 1 - b] * k[a, b]
    return out


@pytest.mark.parametrize("x_shape, k_shape", SHAPES)
def test_helpers_match_brute_force(x_shape, k_shape) -> None:
    rng = np.random.default_rng(sum(x_shape) * 10 + sum(k_shape))
    x, k = rng.normal(size=x_shape), rng.normal(size=k_shape)
    np.testing.assert_allclose(correlate2d(x, k), brute_correlate(x, k), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(convolve2d(x, k), brute_convolve(x, k), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("x_shape, k_shape", SHAPES)
def test_flipping_turns_convolution_into_the_correlation(x_shape, k_shape) -> None:
    rng = np.random.default_rng(7 + sum(x_shape))
    x, k = rng.normal(size=x_shape), rng.normal(size=k_shape)
    correlation = brute_correlate(x, k)
    # Convolving with the flipped kernel is the framework's result, number for number.
    np.testing.assert_allclose(convolve2d(x, k[::-1, ::-1]), correlation, rtol=1e-12, atol=1e-12)
    # Convolving the flipped input with the kernel gives it turned by 180 degrees.
    np.testing.assert_allclose(convolve2d(x[::-1, ::-1], k)[::-1, ::-1], correlation,
                               rtol=1e-12, atol=1e-12)


def test_sobel_correlation_and_convolution_differ() -> None:
    edge = np.array([[0.0, 0.0, 1.0]] * 3)  # dark to bright, left to right
    # Correlation: the right column (1, 2, 1) times 1 each = 4; convolution flips the kernel
    # (a Sobel kernel turned by 180 degrees is its negative): -4.
    assert correlate2d(edge, SOBEL_X).tolist() == [[4.0]]
    assert convolve2d(edge, SOBEL_X).tolist() == [[-4.0]]
    assert np.array_equal(flip(SOBEL_X), -SOBEL_X)


def test_helpers_refuse_kernels_larger_than_the_input() -> None:
    with pytest.raises(ValueError):
        correlate2d(np.zeros((2, 5)), np.zeros((3, 3)))


def test_example_uses_the_layers_first_kernel_on_a_centred_patch() -> None:
    weights = np.arange(4 * 2 * 3 * 2, dtype=np.float32).reshape(4, 2, 3, 2)
    x = np.arange(2 * 2 * 9 * 9, dtype=np.float32).reshape(2, 2, 9, 9)
    example = layer_example(Conv(kernel_size=(3, 2)), {"W": weights}, x)
    np.testing.assert_array_equal(example.kernel, weights[0, 0])
    # kernel + 2 per axis = 5x4, centred in 9x9: rows 2..6, columns 2..5.
    np.testing.assert_array_equal(example.patch, x[0, 0, 2:7, 2:6])
    assert example.correlation.shape == (3, 3)
    assert "on the layer's input" in example.source


def test_example_for_1d_layers_and_fallbacks() -> None:
    signal = np.arange(40, dtype=np.float32).reshape(1, 2, 20)
    example = layer_example(Conv(rank=1, kernel_size=3), {"W": np.ones((4, 2, 3))}, signal)
    np.testing.assert_array_equal(example.patch, [signal[0, 0, 7:12]])
    assert example.correlation.tolist() == [[24.0, 27.0, 30.0]]  # 7+8+9, 8+9+10, 9+10+11
    sample = layer_example(MaxPool(), None, None)
    np.testing.assert_array_equal(sample.kernel, SOBEL_X)
    assert sample.patch.shape == (5, 5) and "Sobel" in sample.source


@pytest.fixture(params=["dark", "light"])
def panel(request, qtbot) -> CrossCorrelationPanel:
    apply_theme(request.param)
    widget = CrossCorrelationPanel()
    widget.resize(760, 720)
    qtbot.addWidget(widget)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def _terms(row) -> list[Term]:
    return [t for t in row.terms if isinstance(t, Term)]


def test_panel_toggle_shows_the_flipped_kernel_and_equal_results(panel) -> None:
    rng = np.random.default_rng(5)
    weights = rng.normal(size=(3, 1, 3, 3))
    x = rng.uniform(size=(1, 1, 8, 8))
    panel.set_layer(Conv(kernel_size=3), {"W": weights}, x)
    assert len(panel.rows) == 1
    _, kernel, result = _terms(panel.rows[0])
    np.testing.assert_array_equal(kernel.values, weights[0, 0])
    np.testing.assert_allclose(result.values, brute_correlate(x[0, 0, 1:6, 1:6], weights[0, 0]),
                               rtol=1e-12)
    off = panel.canvas.grab().toImage()

    panel.true_convolution.setChecked(True)
    assert len(panel.rows) == 3
    by_kernel = _terms(panel.rows[1])
    np.testing.assert_array_equal(by_kernel[1].values, weights[0, 0][::-1, ::-1])
    np.testing.assert_allclose(by_kernel[2].values, result.values, rtol=1e-12)
    flipped_input = _terms(panel.rows[2])
    np.testing.assert_array_equal(flipped_input[0].values, x[0, 0, 1:6, 1:6][::-1, ::-1])
    np.testing.assert_allclose(flipped_input[3].values, result.values, rtol=1e-12)
    assert panel.rows[1].check is True and panel.rows[2].check is True
    assert panel.canvas.grab().toImage() != off

    panel.true_convolution.setChecked(False)
    assert len(panel.rows) == 1


def test_panel_says_when_unflipped_convolution_would_differ(panel) -> None:
    panel.set_layer(None, None, None)  # the Sobel sample
    assert "differ" in panel.rows[0].note and "Sobel" in panel.source.text()
    symmetric = np.ones((1, 1, 3, 3))
    panel.set_layer(Conv(kernel_size=3), {"W": symmetric}, None)
    assert "its own 180° turn" in panel.rows[0].note
    image = panel.grab().toImage()
    assert len({image.pixel(x, y) for x in range(0, image.width(), 9)
                for y in range(0, image.height(), 9)}) > 4
