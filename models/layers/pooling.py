"""Pooling specs: max and average over windows, and global pooling over all positions."""
from __future__ import annotations

from dataclasses import dataclass

from models.fields import param
from models.geometry import RFStep
from models.layers.base import LayerInfo, LayerSpec, Shape, register, require_rank, require_spatial
from models.layers.window import (axes_text, dilation_field, kernel_field, normalise_flags,
                                  normalise_window, pads_field, padding_field, rank_field,
                                  stride_field, window_geometry, window_rf)


def ceil_field() -> object:
    return param(False, "Ceil mode", "Keep a last, partial window at the end instead of dropping it.")


class _Pool(LayerSpec):
    category = "Pooling"

    def _info(self, in_shape: Shape) -> LayerInfo:
        require_rank(self, in_shape, self.rank)  # type: ignore[attr-defined]
        out, pads = window_geometry(self, in_shape, ceil_mode=self.ceil_mode,  # type: ignore[attr-defined]
                                    pool=True)
        return LayerInfo(output_shape=(in_shape[0], *out), rf_steps=(window_rf(self, pads),),
                         attrs={"pads": pads})

    def summary(self) -> str:
        text = f"{axes_text(self.kernel_size)} /{axes_text(self.stride)}"  # type: ignore[attr-defined]
        if max(self.dilation) > 1:  # type: ignore[attr-defined]
            text += f" dil {axes_text(self.dilation)}"  # type: ignore[attr-defined]
        return text + (" ceil" if self.ceil_mode else "")  # type: ignore[attr-defined]


@register
@dataclass(frozen=True)
class MaxPool(_Pool):
    """The largest value in each window."""
    description = "Keeps the strongest response in each window; shrinks the map."

    rank: int = rank_field()
    kernel_size: tuple[int, ...] = kernel_field(2)
    stride: tuple[int, ...] = stride_field(2)
    padding: str = padding_field("valid")
    pads: tuple[int, ...] = pads_field()
    dilation: tuple[int, ...] = dilation_field()
    ceil_mode: bool = ceil_field()

    def __post_init__(self) -> None:
        normalise_window(self)
        normalise_flags(self, bools=("ceil_mode",))

    @property
    def type_name(self) -> str:
        return f"MaxPool{self.rank}D"

    @property
    def short_name(self) -> str:
        return "maxpool"

    def analyse(self, in_shape: Shape) -> LayerInfo:
        return self._info(in_shape)


@register
@dataclass(frozen=True)
class AvgPool(_Pool):
    """The mean of each window."""
    description = "Averages each window; a smooth way to shrink the map."

    rank: int = rank_field()
    kernel_size: tuple[int, ...] = kernel_field(2)
    stride: tuple[int, ...] = stride_field(2)
    padding: str = padding_field("valid")
    pads: tuple[int, ...] = pads_field()
    dilation: tuple[int, ...] = dilation_field()
    ceil_mode: bool = ceil_field()
    count_include_pad: bool = param(False, "Count padding", "Divide by the whole window, padded "
                                    "zeros included, instead of by the real pixels only.")

    def __post_init__(self) -> None:
        normalise_window(self)
        normalise_flags(self, bools=("ceil_mode", "count_include_pad"))

    @property
    def type_name(self) -> str:
        return f"AvgPool{self.rank}D"

    @property
    def short_name(self) -> str:
        return "avgpool"

    def analyse(self, in_shape: Shape) -> LayerInfo:
        return self._info(in_shape)


class _GlobalPool(LayerSpec):
    category = "Pooling"

    def analyse(self, in_shape: Shape) -> LayerInfo:
        require_spatial(self, in_shape)
        spatial = in_shape[1:]
        return LayerInfo(output_shape=(in_shape[0],) + (1,) * len(spatial),
                         rf_steps=(tuple(RFStep(w, w) for w in spatial),))


@register
@dataclass(frozen=True)
class GlobalMaxPool(_GlobalPool):
    """The largest value of each channel over all positions; keeps size-1 spatial axes."""
    description = "One number per channel: its strongest response anywhere."


@register
@dataclass(frozen=True)
class GlobalAvgPool(_GlobalPool):
    """The mean of each channel over all positions; keeps size-1 spatial axes."""
    description = "One number per channel: its mean over the whole map."
