"""Elementwise passes over large arrays, split across the pool's threads.

One NumPy ufunc call runs on one core. For activations of tens of MB that leaves the second core
idle: on the 2-core dev VM (Intel, AVX-512) ``np.maximum`` over 51 MB took 7.0 ms on one thread
and 3.0 ms split over two. Pieces of about 1 MiB also keep a multi-pass function (a sigmoid is
four passes) in cache from one pass to the next. (On an earlier AMD dev VM a ReLU split over
the pool had gained nothing: there one core already saturated the memory bandwidth.)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import numpy as np

from engine.ops._parallel import num_workers, run_chunked

__all__ = ["elementwise", "per_row_loops", "split_rows"]

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


# Rows shorter than this run faster buffered: one loop call per row costs more than the copy.
_MIN_ROW_LOOP = 512


@contextlib.contextmanager
def per_row_loops(row_length: int) -> Iterator[None]:
    """Within the block (in the calling thread), a ufunc that broadcasts a per-row coefficient
    column over C-contiguous rows of ``row_length`` values loops row by row.

    By default NumPy iterates such a call in buffered chunks of 8192 values that span rows, and
    copies the coefficient column into a buffer for every chunk: on the 2-core dev VM a batch
    norm's multiply-add over (192, 3136) took 227 us so, 112 us row by row. A buffer size under
    the row length makes NumPy loop over whole rows unbuffered. Rows under 512 values or over
    the buffer size are left as they are (for (576, 196) row by row was 46 -> 62 us)."""
    if not _MIN_ROW_LOOP <= row_length < np.getbufsize():
        yield
        return
    previous = np.setbufsize(16)  # the smallest NumPy allows; any size under a row would do
    try:
        yield
    finally:
        np.setbufsize(previous)
