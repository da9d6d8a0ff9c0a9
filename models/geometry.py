"""Per-axis sliding-window arithmetic shared by convolution and pooling specs.

All sizes are in pixels of one spatial axis. Pads are ONNX-ordered tuples: the begins of every
axis, then the ends. `same` padding follows TensorFlow/ONNX SAME_UPPER (the odd pixel at the end).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

PADDING_MODES = ("valid", "same", "explicit")


def span(kernel: int, dilation: int) -> int:
    """Pixels covered by a kernel with holes: (F - 1) * D + 1."""
    return (kernel - 1) * dilation + 1


def same_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """(begin, end) padding that gives ceil(size / stride) outputs, the odd pixel at the end."""
    total = max((math.ceil(size / stride) - 1) * stride + span(kernel, dilation) - size, 0)
    return total // 2, total - total // 2


def resolve_pads(mode: str, pads: tuple[int, ...], spatial: tuple[int, ...],
                 kernel: tuple[int, ...], stride: tuple[int, ...],
                 dilation: tuple[int, ...]) -> tuple[int, ...]:
    """Explicit ONNX-ordered pads for a padding mode on an input of the given spatial size."""
    rank = len(spatial)
    if mode == "valid":
        return (0,) * (2 * rank)
    if mode == "same":
        pairs = [same_pads(*args) for args in zip(spatial, kernel, stride, dilation)]
        return tuple(p[0] for p in pairs) + tuple(p[1] for p in pairs)
    return pads


def window_count(size: int, kernel: int, stride: int, pad_begin: int, pad_end: int,
                 dilation: int = 1, ceil_mode: bool = False) -> int:
    """Number of window positions along one axis (the output size of a conv or pool).

    With ceil_mode a last, partial window is kept unless it would start in the end padding
    (the rule of ONNX opset 19 and PyTorch). May return <= 0 when the window does not fit.
    """
    room = size + pad_begin + pad_end - span(kernel, dilation)
    if room < 0:
        return 0
    if not ceil_mode:
        return room // stride + 1
    count = -(-room // stride) + 1
    if (count - 1) * stride >= size + pad_begin:
        count -= 1
    return count


def transposed_size(size: int, kernel: int, stride: int, pad_begin: int, pad_end: int,
                    dilation: int, output_padding: int) -> int:
    """Output size of a transposed convolution: S*(W-1) + D*(F-1) + 1 - P_b - P_e + output_padding."""
    return stride * (size - 1) + span(kernel, dilation) - pad_begin - pad_end + output_padding


@dataclass(frozen=True)
class RFStep:
    """How one layer maps positions along one axis, for receptive-field arithmetic.

    kernel is the span in the layer's input pixels (dilation included); stride and pad_begin as the
    layer applies them; a transposed step spreads each input over `stride` outputs instead.
    """
    kernel: int
    stride: int
    pad_begin: int = 0
    transposed: bool = False


@dataclass(frozen=True)
class RFState:
    """Receptive field of one output pixel along one axis, in input pixels.

    size: how many input pixels one output pixel sees; jump: the distance in input pixels between
    neighbouring output pixels; start: the input coordinate of the first pixel that output 0 sees
    (negative where padding lies before the input).
    """
    size: float = 1
    jump: float = 1
    start: float = 0

    def then(self, step: RFStep) -> RFState:
        if step.transposed:
            # Output o gathers inputs i with i*S + t*D - P = o: about ceil(span / S) of them.
            taps = -(-step.kernel // step.stride)
            return RFState(size=self.size + (taps - 1) * self.jump,
                           jump=self.jump / step.stride,
                           start=self.start - (step.kernel - 1 - step.pad_begin) / step.stride * self.jump)
        return RFState(size=self.size + (step.kernel - 1) * self.jump,
                       jump=self.jump * step.stride,
                       start=self.start - step.pad_begin * self.jump)

    @staticmethod
    def union(states: tuple[RFState, ...]) -> RFState:
        """The field of a pixel that sees what each state sees: from the earliest start to the
        latest end; neighbouring outputs are as far apart as in the coarsest branch."""
        start = min(s.start for s in states)
        end = max(s.start + s.size for s in states)
        return RFState(size=end - start, jump=max(s.jump for s in states), start=start)
