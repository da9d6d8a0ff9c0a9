"""The arithmetic of one layer written out with its numbers: output sizes, `same` padding,
parameters, MACs, and what a fully connected layer between the same sizes would cost.

Each row carries the formula in symbols, the same formula with the layer's numbers, and the
value it comes to. Values are worked here from the formulas themselves (not read from the
analysis), so they can be checked against models.analysis.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from models.layers import (AvgPool, Conv, ConvTranspose, DepthwiseConv, GlobalAvgPool,
                           GlobalMaxPool, LayerInfo, LayerSpec, MaxPool, PointwiseConv, Shape)
from models.layers.base import AXIS_NAMES

CONVOLUTIONS = (Conv, DepthwiseConv, PointwiseConv, ConvTranspose)
POOLS = (MaxPool, AvgPool)


@dataclass(frozen=True)
class FormulaRow:
    """label: what is computed ("Output width"); formula: in symbols; numbers: the formula with
    this layer's numbers; value: what it comes to (an int for sizes and counts); note: a remark
    on the value, or empty."""
    label: str
    formula: str
    numbers: str
    value: int | float | str
    note: str = ""


@dataclass(frozen=True)
class LayerFormulas:
    """The rows for one layer, and a note (why there are none, or what to keep in mind)."""
    rows: tuple[FormulaRow, ...]
    note: str = ""

    def value(self, label: str) -> int | float | str:
        """The value of the row labelled `label`; KeyError when there is none."""
        for row in self.rows:
            if row.label == label:
                return row.value
        raise KeyError(label)


def _ratio(value: float) -> str:
    return f"{value:,.0f}×" if value >= 100 else f"{value:.3g}×"


def _frac(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{float(value):.4g}"


def _axis_label(what: str, rank: int, axis: int) -> str:
    return f"{what} {AXIS_NAMES[rank][axis]}" if rank > 1 else f"{what} length"


def same_split_rows(size: int, kernel: int, stride: int, dilation: int, axis: str
                    ) -> list[FormulaRow]:
    """SAME_UPPER: total = max((ceil(W/S) - 1)*S + D*(F-1) + 1 - W, 0), then its split, the odd
    pixel at the end. Labels: "Same padding total <axis>" and "Same padding <axis>"."""
    needed = (-(-size // stride) - 1) * stride + dilation * (kernel - 1) + 1 - size
    total = max(needed, 0)
    begin = total // 2
    return [
        FormulaRow(f"Same padding total {axis}", "max((⌈W/S⌉ − 1)·S + D·(F − 1) + 1 − W, 0)",
                   f"max((⌈{size}/{stride}⌉ − 1)·{stride} + {dilation}·({kernel} − 1) + 1 − "
                   f"{size}, 0)", total),
        FormulaRow(f"Same padding {axis}", "begin + end = ⌊total/2⌋ + (total − ⌊total/2⌋)",
                   f"⌊{total}/2⌋ + ({total} − {begin})", f"{begin} + {total - begin}",
                   "the odd pixel at the end" if total % 2 else ""),
    ]


def window_size_row(size: int, kernel: int, stride: int, dilation: int, begin: int, end: int,
                    ceil_mode: bool, label: str) -> FormulaRow:
    """(W - D*(F-1) - 1 + P_begin + P_end)/S + 1, floored (or ceiled for pooling's ceil mode)."""
    padding = f"2·{begin}" if begin == end else f"{begin} + {end}"
    symbol = "2P" if begin == end else "P_begin + P_end"
    room = size - dilation * (kernel - 1) - 1 + begin + end
    exact = Fraction(room, stride) + 1
    if ceil_mode:
        count = math.ceil(exact)
        # ONNX / PyTorch: a last window that would start in the end padding is dropped.
        dropped = (count - 1) * stride >= size + begin
        value = count - 1 if dropped else count
        rounding = f"⌈{_frac(exact)}⌉" + (" − 1" if dropped else "")
        note = "ceil mode; the last window would start in the end padding" if dropped \
            else "ceil mode"
        brackets = "⌈", "⌉"
    else:
        value = math.floor(exact)
        rounding, note = f"⌊{_frac(exact)}⌋", ""
        brackets = "⌊", "⌋"
    return FormulaRow(
        label, f"{brackets[0]}(W − D·(F − 1) − 1 + {symbol}) / S + 1{brackets[1]}",
        f"({size} − {dilation}·({kernel} − 1) − 1 + {padding}) / {stride} + 1 = {rounding}", value,
        note)


def transposed_same_row(kernel: int, stride: int, dilation: int, output_padding: int,
                        label: str) -> FormulaRow:
    """A transposed `same` crops D*(F-1) + 1 - S + output_padding pixels so the output is
    input x stride, the odd one at the end."""
    total = dilation * (kernel - 1) + 1 - stride + output_padding
    begin = total // 2
    return FormulaRow(
        label, "begin + end = ⌊total/2⌋ + (total − ⌊total/2⌋), total = D·(F − 1) + 1 − S + "
        "output_padding",
        f"⌊{total}/2⌋ + ({total} − {begin}), total = {dilation}·({kernel} − 1) + 1 − {stride} + "
        f"{output_padding}", f"{begin} + {total - begin}",
        "the odd pixel at the end" if total % 2 else "")


def transposed_size_row(size: int, kernel: int, stride: int, dilation: int, begin: int, end: int,
                        output_padding: int, label: str) -> FormulaRow:
    value = (size - 1) * stride - begin - end + dilation * (kernel - 1) + output_padding + 1
    return FormulaRow(
        label, "(W − 1)·S − P_begin − P_end + D·(F − 1) + output_padding + 1",
        f"({size} − 1)·{stride} − {begin} − {end} + {dilation}·({kernel} − 1) + {output_padding}"
        f" + 1", value)


def _kernel_text(kernel: tuple[int, ...]) -> tuple[str, str]:
    symbols = "·".join("F" for _ in kernel) if len(set(kernel)) == 1 else \
        "·".join(f"F_{AXIS_NAMES[len(kernel)][a][0]}" for a in range(len(kernel)))
    return symbols, "·".join(map(str, kernel))


def _conv_rows(spec: LayerSpec, info: LayerInfo, in_shape: Shape, batch: int) -> list[FormulaRow]:
    """Parameters, MACs and the fully connected equivalent of a (grouped) convolution."""
    kernel = tuple(spec.kernel_size)  # type: ignore[attr-defined]
    c_in = in_shape[0]
    c_out = info.output_shape[0]
    groups = int(info.attrs["group"])
    bias = bool(spec.bias)  # type: ignore[attr-defined]
    symbols, numbers = _kernel_text(kernel)
    params = (math.prod(kernel) * c_in // groups + bias) * c_out
    plus = " + 1" if bias else ""
    rows = [FormulaRow("Parameters", f"({symbols}·C_in/groups{plus})·C_out",
                       f"({numbers}·{c_in}/{groups}{plus})·{c_out}", params)]
    out_pixels = math.prod(info.output_shape[1:])
    if isinstance(spec, ConvTranspose):
        in_pixels = math.prod(in_shape[1:])
        macs = batch * in_pixels * c_in * math.prod(kernel) * (c_out // groups)
        rows.append(FormulaRow("MACs", f"N · input pixels · C_in · {symbols} · C_out/groups",
                               f"{batch} · {in_pixels} · {c_in} · {numbers} · {c_out}/{groups}",
                               macs))
    else:
        macs = batch * out_pixels * c_out * math.prod(kernel) * (c_in // groups)
        rows.append(FormulaRow("MACs", f"N · output pixels · C_out · {symbols} · C_in/groups",
                               f"{batch} · {out_pixels} · {c_out} · {numbers} · {c_in}/{groups}",
                               macs))
    features_in, features_out = math.prod(in_shape), math.prod(info.output_shape)
    dense_params = features_in * features_out + features_out
    dense_macs = batch * features_in * features_out
    rows += [
        FormulaRow("Fully connected parameters", "in_features·out_features + out_features",
                   f"{features_in}·{features_out} + {features_out}", dense_params),
        FormulaRow("Fully connected MACs", "N · in_features · out_features",
                   f"{batch} · {features_in} · {features_out}", dense_macs),
        FormulaRow("Weight sharing saves", "fully connected parameters / parameters",
                   f"{dense_params:,} / {params:,}", _ratio(dense_params / params)),
    ]
    return rows


def layer_formulas(spec: LayerSpec, info: LayerInfo, in_shape: Shape, batch: int = 1
                   ) -> LayerFormulas:
    """The formula rows of a layer on an input of shape in_shape = (C, *spatial), for a batch
    of `batch`. Convolutions (plain, grouped, depthwise, pointwise, transposed) and pooling get
    rows per spatial axis; other layers get no rows and a note saying why."""
    spatial = tuple(in_shape[1:])
    rank = len(spatial)
    if isinstance(spec, (GlobalAvgPool, GlobalMaxPool)):
        return LayerFormulas(tuple(
            FormulaRow(_axis_label("Output", rank, a), "1: the whole axis is one window",
                       f"{w} pixels → 1", 1) for a, w in enumerate(spatial)),
            "Global pooling has no weights and counts no MACs.")
    if not isinstance(spec, CONVOLUTIONS + POOLS):
        return LayerFormulas((), f"{spec.type_name} has no sliding window: no size formula. It "
                             f"has {info.params:,} parameters (see the Summary).")
    rows: list[FormulaRow] = []
    pads = info.attrs["pads"]
    kernel, stride, dilation = spec.kernel_size, spec.stride, spec.dilation  # type: ignore[attr-defined]
    for a, w in enumerate(spatial):
        begin, end = pads[a], pads[a + rank]
        if isinstance(spec, ConvTranspose):
            if spec.padding == "same":
                rows.append(transposed_same_row(kernel[a], stride[a], dilation[a],
                                                spec.output_padding[a],
                                                _axis_label("Same crop", rank, a)))
            rows.append(transposed_size_row(w, kernel[a], stride[a], dilation[a], begin, end,
                                            spec.output_padding[a], _axis_label("Output", rank, a)))
            continue
        if spec.padding == "same":  # type: ignore[attr-defined]
            rows += same_split_rows(w, kernel[a], stride[a], dilation[a],
                                    AXIS_NAMES[rank][a] if rank > 1 else "length")
        rows.append(window_size_row(w, kernel[a], stride[a], dilation[a], begin, end,
                                    bool(getattr(spec, "ceil_mode", False)),
                                    _axis_label("Output", rank, a)))
    if isinstance(spec, POOLS):
        note = "Pooling has no weights and counts no MACs."
    else:
        note = "Convolution here is cross-correlation, as in every framework: the kernel is not flipped."
    if isinstance(spec, CONVOLUTIONS):
        rows += _conv_rows(spec, info, in_shape, batch)
    return LayerFormulas(tuple(rows), note)

