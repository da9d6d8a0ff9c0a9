"""Elementwise passes over large arrays, split across the pool's threads.

One NumPy ufunc call runs on one core. For activations of tens of MB that leaves the second core
idle: on the 2-core dev VM (Intel, AVX-512) ``np.maximum`` over 51 MB took 7.0 ms on one thread
and 3.0 ms split over two. Pieces of about 1 MiB also keep a multi-pass function (a sigmoid is
four passes) in cache from one pass to the next. (On an earlier AMD dev VM a ReLU split over
the pool had gained nothing: there one core already saturated the memory bandwidth.)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from engine.ops._parallel import num_workers, run_chunked

__all__ = ["elementwise", "split_rows"]

# Below this the pool's hand-off (tens of microseconds) costs more than the second core saves.
_MIN_SPLIT_BYTES = 4 << 20
_PIECE_BYTES = 1 << 20


def split_rows(fn: Callable[..., object], out: np.ndarray, *inputs: np.ndarray) -> np.ndarray:
    """Call ``fn(*input_rows, out_rows)`` on pieces of rows (axis 0) of ``out`` and ``inputs``.

    Every input has out's number of rows (a (rows, 1) input broadcasts along the row, e.g. a
    per-channel coefficient). ``fn`` must write exactly its piece of ``out``. Returns ``out``.
    """
    rows = out.shape[0]
    if out.nbytes < _MIN_SPLIT_BYTES or num_workers() == 1 or rows < 2:
        fn(*inputs, out)
        return out
    per = max(1, _PIECE_BYTES * rows // out.nbytes)
    pieces = [slice(lo, min(rows, lo + per)) for lo in range(0, rows, per)]
    run_chunked(pieces, lambda rows_: fn(*(a[rows_] for a in inputs), out[rows_]))
    return out


def elementwise(fn: Callable[..., object], out: np.ndarray, *inputs: np.ndarray) -> np.ndarray:
    """``fn(*input_pieces, out_piece)`` over ``inputs`` and ``out``, all of one shape, split as
    ``split_rows`` splits: anywhere when every array is C-contiguous, else along the first axis.
    Returns ``out``."""
    if all(a.flags.c_contiguous for a in (out, *inputs)):
        split_rows(fn, out.reshape(-1), *(a.reshape(-1) for a in inputs))
    else:
        split_rows(fn, out, *inputs)
    return out
