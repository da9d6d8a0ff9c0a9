"""gui.sample_inputs: a built-in sample fits any input shape the stack can have."""
from __future__ import annotations

import numpy as np
import pytest

from gui.sample_inputs import load_sample, sample_path
from models.stack import InputSpec


@pytest.mark.parametrize("spec", [InputSpec(3, (40, 30)), InputSpec(5, (20, 20)),
                                  InputSpec(1, (32, 32)), InputSpec(4, (100,)),
                                  InputSpec(2, (4, 8, 8)), InputSpec(7, ())])
def test_the_sample_fits_every_input(spec):
    x = load_sample(spec)
    assert x.shape == (1, *spec.sample_shape) and x.dtype == np.float32
    assert np.isfinite(x).all() and x.std() > 0


def test_the_sample_follows_the_spatial_rank():
    names = [sample_path(InputSpec(1, spatial)).name for spatial in ((), (9,), (9, 9), (9, 9, 9))]
    assert names == ["signal.npy", "signal.npy", "digit.png", "volume.npy"]


def test_small_grey_image_inputs_get_the_digit_and_others_the_photo():
    names = [sample_path(spec).name for spec in (InputSpec(1, (32, 32)), InputSpec(1, (28, 64)),
                                                 InputSpec(1, (65, 32)), InputSpec(3, (32, 32)))]
    assert names == ["digit.png", "digit.png", "photo.jpg", "photo.jpg"]


def test_a_colour_sample_keeps_its_colours_when_the_stack_wants_rgb():
    x = load_sample(InputSpec(3, (64, 64)))[0]
    assert not np.allclose(x[0], x[1])  # real colour channels, not a repeated grey
