"""Saying where NaN and infinite values are in a run: the input, or the first layer that makes them.

The engine computes on whatever numbers it is given (a NaN input or weight, or values that
overflow float32, spread through every later layer); these sentences tell the person where they
start, for the window's status bar and the command line's warnings.
"""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np


CHUNK_VALUES = 1 << 20
"""Values tested at a time: the masks np.isnan and np.isfinite make are this size, never the
array's (an input may hold 10^8 values)."""


def _chunks(array: np.ndarray) -> Iterator[np.ndarray]:
    flat = np.asarray(array).reshape(-1)
    return (flat[i:i + CHUNK_VALUES] for i in range(0, flat.size, CHUNK_VALUES))


def nonfinite_counts(array: np.ndarray) -> tuple[int, int]:
    """(NaN values, infinite values) in the array."""
    nan = infinite = 0
    for chunk in _chunks(array):
        nan += int(np.isnan(chunk).sum())
        infinite += int(np.isinf(chunk).sum())
    return nan, infinite


def all_finite(array: np.ndarray) -> bool:
    """Whether every value of the array is finite (stops at the first chunk that is not)."""
    return all(np.isfinite(chunk).all() for chunk in _chunks(array))


def counts_text(nan: int, infinite: int) -> str:
    """"1 NaN value", "2 infinite values", "3 NaN and 2 infinite values"."""
    parts = [f"{nan:,} NaN" if nan else "", f"{infinite:,} infinite" if infinite else ""]
    return " and ".join(part for part in parts if part) + (" value" if nan + infinite == 1
                                                           else " values")


def first_nonfinite(outputs: Sequence[np.ndarray | None]) -> int | None:
    """Index of the first output that holds NaN or infinity, or None (None outputs are skipped)."""
    for i, out in enumerate(outputs):
        if out is not None and not all_finite(out):
            return i
    return None


def nonfinite_warning(x: np.ndarray, outputs: Sequence[np.ndarray | None],
                      names: Sequence[str]) -> str | None:
    """One sentence naming where NaN or infinite values appear in a run of input x whose layers,
    named by `names`, gave `outputs`; None when every value is finite.

    "the input holds 4 NaN values (layer 1 (conv1) is the first whose output holds any)" or
    "layer 3 (conv2) is the first whose output holds NaN or infinite values (12 NaN values);
    check its weights and the range of its input".
    """
    index = first_nonfinite(outputs)
    in_nan, in_inf = nonfinite_counts(x)
    if in_nan or in_inf:
        where = (f"layer {index + 1} ({names[index]}) is the first whose output holds any"
                 if index is not None else "no layer's output holds any")
        return f"the input holds {counts_text(in_nan, in_inf)} ({where})"
    if index is None:
        return None
    counts = counts_text(*nonfinite_counts(outputs[index]))  # type: ignore[arg-type]
    return (f"layer {index + 1} ({names[index]}) is the first whose output holds NaN or infinite "
            f"values ({counts}); check its weights and the range of its input")
