"""NumPy compute kernels of ConvScope, one kernel family per module.

All kernels take and return float32 arrays, batch-first and channel-first
(N, C, *spatial) with 1 to 3 spatial axes. Attribute keyword arguments are
spelled as the ONNX operators spell them.

Note: the functions ``conv`` and ``conv_transpose`` re-exported here shadow
the submodules of the same name as attributes of this package, so
``import engine.ops.conv as m`` yields the function; use
``importlib.import_module("engine.ops.conv")`` to reach a module.
"""

from __future__ import annotations

from engine.ops.activation import leaky_relu, relu, sigmoid, softmax, tanh
from engine.ops.conv import conv, conv_output_size
from engine.ops.conv_transpose import conv_transpose, conv_transpose_output_size
from engine.ops.dense import dense, flatten
from engine.ops.normalization import batch_normalization
from engine.ops.pooling import (
    average_pool,
    global_average_pool,
    global_max_pool,
    max_pool,
    pool_output_size,
)

__all__ = [
    "average_pool",
    "batch_normalization",
    "conv",
    "conv_output_size",
    "conv_transpose",
    "conv_transpose_output_size",
    "dense",
    "flatten",
    "global_average_pool",
    "global_max_pool",
    "leaky_relu",
    "max_pool",
    "pool_output_size",
    "relu",
    "sigmoid",
    "softmax",
    "tanh",
]

# Activations, element-wise math and normalisations of the graph vocabulary.
from engine.ops.activation import (clip, elu, erf, gelu, hard_sigmoid, hard_swish,  # noqa: E402
                                   log_softmax, prelu, silu, unary)
from engine.ops.normalization import instance_normalization, lrn  # noqa: E402

__all__ += ["clip", "elu", "erf", "gelu", "hard_sigmoid", "hard_swish", "instance_normalization",
            "log_softmax", "lrn", "prelu", "silu", "unary"]
from engine.ops.resize import resize  # noqa: E402
from engine.ops.shape_ops import (  # noqa: E402
    channel_shuffle, depth_to_space, gemm, matmul, pad, reduce, reshape, slice_axes,
    space_to_depth, transpose,
)

__all__ += ["channel_shuffle", "depth_to_space", "gemm", "matmul", "pad", "reduce", "reshape",
            "resize", "slice_axes", "space_to_depth", "transpose"]
