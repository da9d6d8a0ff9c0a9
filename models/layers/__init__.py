"""Every layer spec, importable from one place. Importing this module registers them all."""
from models.layers.activation import (ELU, GELU, Clip, HardSigmoid, HardSwish, LeakyReLU,
                                      LogSoftmax, PReLU, ReLU, Sigmoid, SiLU, Softmax, Tanh, Unary)
from models.layers.base import LAYER_TYPES, LayerInfo, LayerSpec, Shape
from models.layers.blocks import SeparableConv
from models.layers.conv import Conv, ConvTranspose, DepthwiseConv, PointwiseConv
from models.layers.matmul import Gemm, MatMul
from models.layers.merge import Add, Concat, Div, Mul, Sub
from models.layers.normalization import LRN, InstanceNorm
from models.layers.opaque import Opaque
from models.layers.resample import DepthToSpace, Pad, Resize, SpaceToDepth
from models.layers.shape_ops import ChannelShuffle, Identity, Reduce, Reshape, Slice, Transpose
from models.layers.pooling import AvgPool, GlobalAvgPool, GlobalMaxPool, MaxPool
from models.layers.structure import BatchNorm, Dense, Flatten

__all__ = ["LAYER_TYPES", "LayerInfo", "LayerSpec", "Shape", "Conv", "ConvTranspose",
           "DepthwiseConv", "PointwiseConv", "SeparableConv", "MaxPool", "AvgPool",
           "GlobalMaxPool", "GlobalAvgPool", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Softmax",
           "Flatten", "Dense", "BatchNorm", "Add", "Sub", "Mul", "Div",
           "Concat", "Clip", "HardSigmoid", "HardSwish", "SiLU", "PReLU", "ELU", "GELU", "Unary",
           "LogSoftmax", "LRN", "InstanceNorm", "Gemm", "MatMul", "Resize", "Pad", "DepthToSpace",
           "SpaceToDepth", "Slice", "Reduce", "Transpose", "Reshape", "ChannelShuffle",
           "Identity", "Opaque"]
