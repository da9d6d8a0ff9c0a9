"""Test material: ONNX graphs of standard architectures, built by hand with onnx.helper the way
PyTorch's exporter (torch.onnx.export, opset 17, eval mode) writes them, so the importer can be
tested on realistic graphs without PyTorch.

Conventions copied from torch's exporter:
- node names are the module scopes joined by "/" then the op type ("/layer1/layer1.0/conv1/Conv";
  a child of a Sequential is scoped "parent.index": "/features/features.0/features.0.0/Conv"),
  a repeated name gets "_1", "_2", ...; a node's outputs are f"{node name}_output_{i}";
- weights are named by their module path ("layer1.0.conv1.weight"); the graph input is "input"
  and the graph output "output"; IR version 8, opset 17;
- BatchNormalization folded into the preceding Conv's weight and bias (torch's default on export)
  in ResNet-18, MobileNetV2, the MobileNetV3 block, the ShuffleNetV2 units and the FPN backbone;
  explicit BatchNormalization nodes (epsilon, momentum 0.9) in DenseNet, U-Net, Inception and the
  DBNet head.

Weights are seeded random float32 at realistic scale: convolutions and linears He-normal
(std sqrt(2 / fan_in)), BatchNorm with positive random variance and gammas near 1 (smaller on the
last BN of a residual branch, so sums of branches stay O(1)).

Every builder takes `input_shape` (batch first) and `seed` keywords and returns a checked-valid
onnx.ModelProto whose graph output carries its static shape.
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8
BN_EPS = 1e-5


def _scope_parts(path: str) -> list[str]:
    """torch's scope names for a module path: "features.1.conv.0.0" ->
    ["features", "features.1", "conv", "conv.0", "conv.0.0"] (an index is named after its
    parent's scope name, an attribute by itself)."""
    parts: list[str] = []
    for piece in path.split("."):
        parts.append(f"{parts[-1]}.{piece}" if piece.isdigit() and parts else piece)
    return parts


def _pair(value: int | Sequence[int], rank: int) -> list[int]:
    return [int(value)] * rank if isinstance(value, int) else [int(v) for v in value]


class _Builder:
    """Collects nodes and initializers with torch-style names; helpers append one module's
    nodes and return the name of its output tensor."""

    def __init__(self, input_shape: Sequence[int], seed: int) -> None:
        self.input_shape = tuple(int(d) for d in input_shape)
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.value_info: list[onnx.ValueInfoProto] = []
        self._used: set[str] = set()

    # -- plumbing -----------------------------------------------------------------------------
    def op(self, op_type: str, inputs: Sequence[str], scope: str = "", outputs: int = 1,
           **attrs: object) -> str | list[str]:
        """Append one node named after `scope` (a module path, "" for the top level)."""
        base = "/" + "/".join([*_scope_parts(scope), op_type]) if scope else f"/{op_type}"
        name, index = base, 0
        while name in self._used:
            index += 1
            name = f"{base}_{index}"
        self._used.add(name)
        outs = [f"{name}_output_{i}" for i in range(outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, name=name, **attrs))
        return outs[0] if outputs == 1 else outs

    def init(self, name: str, array: np.ndarray) -> str:
        """Add an initializer (float arrays are stored as float32)."""
        if array.dtype.kind == "f":
            array = array.astype(np.float32)
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def const(self, scope: str, array: np.ndarray) -> str:
        """A Constant node, as torch writes the small operands it does not fold."""
        if array.dtype.kind == "f":
            array = array.astype(np.float32)
        return self.op("Constant", [], scope, value=numpy_helper.from_array(array, ""))

    def he(self, shape: Sequence[int], fan_in: int, gain: float = 1.0) -> np.ndarray:
        return (self.rng.standard_normal(shape) * (gain * np.sqrt(2.0 / fan_in))).astype(
            np.float32)

    def bn_params(self, c: int, gamma: tuple[float, float]) -> tuple[np.ndarray, ...]:
        """(scale, bias, running mean, running var) of an eval-mode BatchNorm."""
        return (self.rng.uniform(*gamma, c).astype(np.float32),
                (self.rng.standard_normal(c) * 0.05).astype(np.float32),
                (self.rng.standard_normal(c) * 0.1).astype(np.float32),
                self.rng.uniform(0.5, 1.5, c).astype(np.float32))

    # -- modules ------------------------------------------------------------------------------
    def conv(self, x: str, path: str, cin: int, cout: int, kernel: int | Sequence[int],
             stride: int | Sequence[int] = 1, pads: Sequence[int] | None = None,
             dilation: int | Sequence[int] = 1, group: int = 1, bias: bool = True,
             fold_bn: bool = False, gamma: tuple[float, float] = (0.8, 1.2),
             rank: int = 2, gain: float = 1.0) -> str:
        """nn.Conv{rank}d at `path`. pads default to "same"-style (k - 1) // 2 * dilation each
        side. fold_bn folds a random eval BatchNorm into weight and bias, as torch's export
        does (the conv then always has a bias). gain scales the He-normal weights."""
        k, s, d = _pair(kernel, rank), _pair(stride, rank), _pair(dilation, rank)
        if pads is None:
            pads = [(kk - 1) // 2 * dd for kk, dd in zip(k, d)] * 2
        fan_in = cin // group * int(np.prod(k))
        w = self.he((cout, cin // group, *k), fan_in, gain)
        b = (self.rng.standard_normal(cout) * 0.05).astype(np.float32) if bias else None
        if fold_bn:
            scale, beta, mean, var = self.bn_params(cout, gamma)
            factor = scale / np.sqrt(var + BN_EPS)
            w = w * factor.reshape(-1, *[1] * (rank + 1))
            b = beta + ((b if b is not None else 0.0) - mean) * factor
        inputs = [x, self.init(f"{path}.weight", w)]
        if b is not None:
            inputs.append(self.init(f"{path}.bias", b))
        return self.op("Conv", inputs, path, dilations=d, group=group, kernel_shape=k,
                       pads=list(pads), strides=s)

    def conv_transpose(self, x: str, path: str, cin: int, cout: int, kernel: int, stride: int,
                       bias: bool = True) -> str:
        """nn.ConvTranspose2d(cin, cout, kernel, stride) with no padding."""
        w = self.he((cin, cout, kernel, kernel), max(1, cin * kernel * kernel // stride ** 2))
        inputs = [x, self.init(f"{path}.weight", w)]
        if bias:
            inputs.append(self.init(f"{path}.bias",
                                    self.rng.standard_normal(cout).astype(np.float32) * 0.05))
        return self.op("ConvTranspose", inputs, path, dilations=[1, 1], group=1,
                       kernel_shape=[kernel] * 2, output_padding=[0, 0], pads=[0] * 4,
                       strides=[stride] * 2)

    def bn(self, x: str, path: str, c: int, eps: float = BN_EPS,
           gamma: tuple[float, float] = (0.8, 1.2)) -> str:
        """nn.BatchNorm2d in eval mode, not folded."""
        scale, beta, mean, var = self.bn_params(c, gamma)
        inputs = [x, self.init(f"{path}.weight", scale), self.init(f"{path}.bias", beta),
                  self.init(f"{path}.running_mean", mean),
                  self.init(f"{path}.running_var", var)]
        return self.op("BatchNormalization", inputs, path, epsilon=eps, momentum=0.9)

    def linear(self, x: str, path: str, cin: int, cout: int) -> str:
        w = self.he((cout, cin), cin)
        b = (self.rng.standard_normal(cout) * 0.05).astype(np.float32)
        return self.op("Gemm", [x, self.init(f"{path}.weight", w), self.init(f"{path}.bias", b)],
                       path, alpha=1.0, beta=1.0, transB=1)

    def relu6(self, x: str, path: str) -> str:
        """nn.ReLU6: Clip with min and max as Constant inputs (opset 11+ form)."""
        low = self.const(path, np.array(0.0, np.float32))
        high = self.const(path, np.array(6.0, np.float32))
        return self.op("Clip", [x, low, high], path)

    def maxpool(self, x: str, path: str, kernel: int, stride: int, pad: int = 0,
                ceil: bool = False) -> str:
        return self.op("MaxPool", [x], path, ceil_mode=int(ceil), dilations=[1, 1],
                       kernel_shape=[kernel] * 2, pads=[pad] * 4, strides=[stride] * 2)

    def resize(self, x: str, path: str, scale: float, mode: str, roi_constant: bool) -> str:
        """F.interpolate(scale_factor=scale): mode "nearest" (asymmetric, floor) or "bilinear"
        (align_corners=False: pytorch_half_pixel). roi is an empty Constant (as torch writes
        it) or the empty name."""
        roi = self.const(path, np.zeros(0, np.float32)) if roi_constant else ""
        scales = self.const(path, np.array([1.0, 1.0, scale, scale], np.float32))
        if mode == "nearest":
            return self.op("Resize", [x, roi, scales], path, coordinate_transformation_mode=
                           "asymmetric", cubic_coeff_a=-0.75, mode="nearest",
                           nearest_mode="floor")
        return self.op("Resize", [x, roi, scales], path,
                       coordinate_transformation_mode="pytorch_half_pixel", cubic_coeff_a=-0.75,
                       mode="linear", nearest_mode="floor")

    # -- model --------------------------------------------------------------------------------
    def finish(self, out: str, name: str) -> onnx.ModelProto:
        """Rename the last tensor "output", give it the shape onnx infers, and wrap the graph
        into an opset-17 model."""
        for node in self.nodes:
            node.output[:] = ["output" if o == out else o for o in node.output]
            node.input[:] = ["output" if i == out else i for i in node.input]
        graph = helper.make_graph(
            self.nodes, name,
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, self.input_shape)],
            [helper.make_tensor_value_info("output", TensorProto.FLOAT, None)],
            initializer=self.initializers, value_info=self.value_info)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="pytorch", producer_version="2.1.0")
        model.ir_version = IR_VERSION
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
        model.graph.output[0].CopyFrom(inferred.graph.output[0])
        return model


def _check_image(input_shape: Sequence[int], multiple: int, what: str) -> None:
    if len(input_shape) != 4 or any(d % multiple for d in input_shape[2:]):
        raise ValueError(f"{what} needs an (N, C, H, W) input with H and W multiples of "
                         f"{multiple}; got {tuple(input_shape)}")


# ---------------------------------------------------------------------------------------------
def resnet18(input_shape: Sequence[int] = (1, 3, 224, 224), seed: int = 0) -> onnx.ModelProto:
    """torchvision ResNet-18, BN folded: Conv 7x7/2, Relu, MaxPool 3/2, 4 stages of 2 BasicBlocks
    (Conv, Relu, Conv, projection shortcut Conv 1x1/2 where the shape changes, Add, Relu),
    GlobalAveragePool, Flatten, Gemm 1000."""
    b = _Builder(input_shape, seed)
    x = b.conv("input", "conv1", input_shape[1], 64, 7, 2, fold_bn=True)
    x = b.op("Relu", [x], "relu")
    x = b.maxpool(x, "maxpool", 3, 2, 1)
    cin = 64
    for stage, (cout, stride) in enumerate(((64, 1), (128, 2), (256, 2), (512, 2)), start=1):
        for block in range(2):
            p = f"layer{stage}.{block}"
            s = stride if block == 0 else 1
            y = b.conv(x, f"{p}.conv1", cin, cout, 3, s, bias=False, fold_bn=True)
            y = b.op("Relu", [y], f"{p}.relu")
            y = b.conv(y, f"{p}.conv2", cout, cout, 3, bias=False, fold_bn=True,
                       gamma=(0.2, 0.4))
            if s != 1 or cin != cout:
                x = b.conv(x, f"{p}.downsample.0", cin, cout, 1, s, bias=False, fold_bn=True,
                           gamma=(0.2, 0.4))
            x = b.op("Relu", [b.op("Add", [y, x], p)], f"{p}.relu")
            cin = cout
    x = b.op("GlobalAveragePool", [x], "avgpool")
    x = b.op("Flatten", [x], axis=1)
    return b.finish(b.linear(x, "fc", 512, 1000), "resnet18")


def _make_divisible(v: float, divisor: int = 8) -> int:
    """torchvision's channel rounding."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


def mobilenet_v2(input_shape: Sequence[int] = (1, 3, 224, 224),
                 seed: int = 0) -> onnx.ModelProto:
    """torchvision MobileNetV2, BN folded: ReLU6 as Clip (min/max Constant inputs), inverted
    residuals (1x1 expand, depthwise 3x3 with group=C, 1x1 project, Add when stride 1 and
    channels match), 1x1 to 1280, GlobalAveragePool, Flatten, Gemm 1000."""
    b = _Builder(input_shape, seed)
    x = b.conv("input", "features.0.0", input_shape[1], 32, 3, 2, bias=False, fold_bn=True)
    x = b.relu6(x, "features.0.2")
    cin, index = 32, 1
    for t, c, n, s in ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                       (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)):
        for i in range(n):
            stride, p = (s if i == 0 else 1), f"features.{index}.conv"
            hidden, y, part = cin * t, x, 0
            if t != 1:
                y = b.conv(y, f"{p}.0.0", cin, hidden, 1, bias=False, fold_bn=True)
                y = b.relu6(y, f"{p}.0.2")
                part = 1
            y = b.conv(y, f"{p}.{part}.0", hidden, hidden, 3, stride, group=hidden, bias=False,
                       fold_bn=True)
            y = b.relu6(y, f"{p}.{part}.2")
            y = b.conv(y, f"{p}.{part + 1}", hidden, c, 1, bias=False, fold_bn=True,
                       gamma=(0.3, 0.5))
            x = b.op("Add", [x, y], f"features.{index}") if stride == 1 and cin == c else y
            cin, index = c, index + 1
    x = b.conv(x, f"features.{index}.0", cin, 1280, 1, bias=False, fold_bn=True)
    x = b.relu6(x, f"features.{index}.2")
    x = b.op("GlobalAveragePool", [x])
    x = b.op("Flatten", [x], axis=1)
    return b.finish(b.linear(x, "classifier.1", 1280, 1000), "mobilenet_v2")


def mobilenet_v3_block(input_shape: Sequence[int] = (1, 112, 14, 14),
                       seed: int = 0) -> onnx.ModelProto:
    """A torchvision MobileNetV3 InvertedResidual with SE and HardSwish (expand 6x), BN folded:
    Conv 1x1, HardSwish, depthwise Conv 3x3, HardSwish, squeeze-excitation (ReduceMean over H, W
    keepdims, Conv 1x1, Relu, Conv 1x1, HardSigmoid, Mul of (N,C,1,1) with (N,C,H,W)), Conv 1x1
    project, Add residual."""
    b = _Builder(input_shape, seed)
    c = input_shape[1]
    hidden = 6 * c
    squeeze = _make_divisible(hidden // 4)
    y = b.conv("input", "block.0.0", c, hidden, 1, bias=False, fold_bn=True)
    y = b.op("HardSwish", [y], "block.0.2")
    y = b.conv(y, "block.1.0", hidden, hidden, 3, group=hidden, bias=False, fold_bn=True)
    y = b.op("HardSwish", [y], "block.1.2")
    s = b.op("ReduceMean", [y], "block.2", axes=[2, 3], keepdims=1)
    s = b.conv(s, "block.2.fc1", hidden, squeeze, 1)
    s = b.op("Relu", [s], "block.2.activation")
    s = b.conv(s, "block.2.fc2", squeeze, hidden, 1)
    s = b.op("HardSigmoid", [s], "block.2.scale_activation", alpha=1.0 / 6.0, beta=0.5)
    y = b.op("Mul", [s, y], "block.2")
    y = b.conv(y, "block.3.0", hidden, c, 1, bias=False, fold_bn=True, gamma=(0.3, 0.5))
    return b.finish(b.op("Add", [y, "input"]), "mobilenet_v3_block")


def squeezenet1_1(input_shape: Sequence[int] = (1, 3, 224, 224),
                  seed: int = 0) -> onnx.ModelProto:
    """torchvision SqueezeNet 1.1: Conv 3x3/2, Relu, MaxPool 3/2 ceil_mode=1, Fire modules
    (squeeze 1x1 + Relu, expand 1x1 + Relu and expand 3x3 + Relu, Concat axis 1), Dropout
    (inference form: data input only), final Conv 1x1 to 1000, Relu, GlobalAveragePool,
    Flatten."""
    b = _Builder(input_shape, seed)
    x = b.conv("input", "features.0", input_shape[1], 64, 3, 2, pads=[0] * 4)
    x = b.op("Relu", [x], "features.1")
    cin = 64
    layout: list[tuple[int, int] | None] = [None, (16, 64), (16, 64), None, (32, 128),
                                            (32, 128), None, (48, 192), (48, 192), (64, 256),
                                            (64, 256)]
    for index, fire in enumerate(layout, start=2):
        p = f"features.{index}"
        if fire is None:
            x = b.maxpool(x, p, 3, 2, ceil=True)
            continue
        sq, ex = fire
        s = b.op("Relu", [b.conv(x, f"{p}.squeeze", cin, sq, 1)], f"{p}.squeeze_activation")
        e1 = b.op("Relu", [b.conv(s, f"{p}.expand1x1", sq, ex, 1)],
                  f"{p}.expand1x1_activation")
        e3 = b.op("Relu", [b.conv(s, f"{p}.expand3x3", sq, ex, 3)],
                  f"{p}.expand3x3_activation")
        x, cin = b.op("Concat", [e1, e3], p, axis=1), 2 * ex
    x = b.op("Dropout", [x], "classifier.0")
    x = b.conv(x, "classifier.1", cin, 1000, 1)
    x = b.op("Relu", [x], "classifier.2")
    x = b.op("GlobalAveragePool", [x], "classifier.3")
    return b.finish(b.op("Flatten", [x], axis=1), "squeezenet1_1")


def unet(input_shape: Sequence[int] = (1, 3, 128, 128), seed: int = 0) -> onnx.ModelProto:
    """A 3-level U-Net (16, 32, 64 channels), explicit BN: double conv blocks (Conv 3x3,
    BatchNormalization, Relu, twice), MaxPool 2 down, up by ConvTranspose 2x2/2 on the lower level
    and by Resize (linear, pytorch_half_pixel, scales 2) on the upper one, skip Concat axis 1,
    Conv 1x1 to 2 classes."""
    _check_image(input_shape, 4, "unet")
    b = _Builder(input_shape, seed)

    def double_conv(x: str, path: str, cin: int, cout: int) -> str:
        for i, c in ((0, cin), (3, cout)):
            x = b.conv(x, f"{path}.double_conv.{i}", c, cout, 3, bias=False)
            x = b.bn(x, f"{path}.double_conv.{i + 1}", cout)
            x = b.op("Relu", [x], f"{path}.double_conv.{i + 2}")
        return x

    x1 = double_conv("input", "inc", input_shape[1], 16)
    x2 = double_conv(b.maxpool(x1, "down1.maxpool_conv.0", 2, 2), "down1.maxpool_conv.1", 16, 32)
    x3 = double_conv(b.maxpool(x2, "down2.maxpool_conv.0", 2, 2), "down2.maxpool_conv.1", 32, 64)
    u = b.conv_transpose(x3, "up1.up", 64, 32, 2, 2)
    u = double_conv(b.op("Concat", [x2, u], "up1", axis=1), "up1.conv", 64, 32)
    u = b.resize(u, "up2.up", 2.0, "bilinear", roi_constant=False)
    u = double_conv(b.op("Concat", [x1, u], "up2", axis=1), "up2.conv", 48, 16)
    return b.finish(b.conv(u, "outc.conv", 16, 2, 1), "unet")


def inception_block(input_shape: Sequence[int] = (1, 192, 28, 28),
                    seed: int = 0) -> onnx.ModelProto:
    """GoogLeNet inception (3a) with BasicConv2d = Conv (no bias) + BatchNormalization (eps 1e-3)
    + Relu: branches 1x1 (64); 1x1 (96) -> 3x3 (128); 1x1 (16) -> 5x5 (32); MaxPool 3x3 stride 1
    pad 1 -> 1x1 (32); Concat axis 1 (256 channels)."""
    b = _Builder(input_shape, seed)

    def basic(x: str, path: str, cin: int, cout: int, k: int) -> str:
        x = b.conv(x, f"{path}.conv", cin, cout, k, bias=False)
        return b.op("Relu", [b.bn(x, f"{path}.bn", cout, eps=1e-3)], path)

    c = input_shape[1]
    b1 = basic("input", "branch1", c, 64, 1)
    b2 = basic(basic("input", "branch2.0", c, 96, 1), "branch2.1", 96, 128, 3)
    b3 = basic(basic("input", "branch3.0", c, 16, 1), "branch3.1", 16, 32, 5)
    b4 = basic(b.maxpool("input", "branch4.0", 3, 1, 1, ceil=True), "branch4.1", c, 32, 1)
    return b.finish(b.op("Concat", [b1, b2, b3, b4], axis=1), "inception_block")


def densenet_block(input_shape: Sequence[int] = (1, 64, 56, 56),
                   seed: int = 0) -> onnx.ModelProto:
    """torchvision DenseNet dense block of 4 layers (growth 32, bottleneck 128), explicit BN:
    each layer Concat(all previous features, axis 1; a single-input Concat for the first) then
    BatchNormalization, Relu, Conv 1x1, BatchNormalization, Relu, Conv 3x3; the block's Concat;
    then a transition: BatchNormalization, Relu, Conv 1x1 halving channels, AveragePool 2/2."""
    _check_image(input_shape, 2, "densenet_block")
    b = _Builder(input_shape, seed)
    features, c = ["input"], input_shape[1]
    for i in range(1, 5):
        p = f"denseblock1.denselayer{i}"
        cin = c + 32 * (i - 1)
        x = b.op("Concat", features, p, axis=1)
        x = b.op("Relu", [b.bn(x, f"{p}.norm1", cin)], f"{p}.relu1")
        x = b.conv(x, f"{p}.conv1", cin, 128, 1, bias=False)
        x = b.op("Relu", [b.bn(x, f"{p}.norm2", 128)], f"{p}.relu2")
        features.append(b.conv(x, f"{p}.conv2", 128, 32, 3, bias=False))
    cin = c + 128
    x = b.op("Concat", features, "denseblock1", axis=1)
    x = b.op("Relu", [b.bn(x, "transition1.norm", cin)], "transition1.relu")
    x = b.conv(x, "transition1.conv", cin, cin // 2, 1, bias=False)
    x = b.op("AveragePool", [x], "transition1.pool", ceil_mode=0, kernel_shape=[2, 2],
             pads=[0] * 4, strides=[2, 2])
    return b.finish(x, "densenet_block")


def _channel_shuffle(b: _Builder, x: str, scope: str, shape: Sequence[int],
                     annotate: bool, groups: int = 2) -> str:
    """torchvision's channel_shuffle as torch exports it with traced sizes:
    x.view(b, g, c // g, h, w) with the shape from Shape -> Gather -> Div -> Unsqueeze ->
    Concat (Constant operands), Transpose perm (0, 2, 1, 3, 4), then x.view(b, -1, h, w) built
    the same way. `shape` is x's (N, C, H, W). onnx's data propagation has no rule for Div, so
    onnx alone cannot size the first Reshape's output; with `annotate` the graph carries that
    tensor's shape in value_info, as torch's exporter writes value_info for its tensors."""
    dims = []
    for axis in range(4):
        sizes = b.op("Shape", [x], scope)
        index = b.const(scope, np.array(axis, np.int64))
        dims.append(b.op("Gather", [sizes, index], scope, axis=0))
    batch, channels, height, width = dims
    per_group = b.op("Div", [channels, b.const(scope, np.array(groups, np.int64))], scope)

    def unsqueeze(t: str) -> str:
        return b.op("Unsqueeze", [t, b.const(scope, np.array([0], np.int64))], scope)

    shape5 = b.op("Concat", [unsqueeze(batch), b.const(scope, np.array([groups], np.int64)),
                             unsqueeze(per_group), unsqueeze(height), unsqueeze(width)],
                  scope, axis=0)
    x = b.op("Reshape", [x, shape5], scope, allowzero=0)
    if annotate:
        n, c, h, w = shape
        b.value_info.append(helper.make_tensor_value_info(
            x, TensorProto.FLOAT, (n, groups, c // groups, h, w)))
    x = b.op("Transpose", [x], scope, perm=[0, 2, 1, 3, 4])
    shape4 = b.op("Concat", [unsqueeze(batch), b.const(scope, np.array([-1], np.int64)),
                             unsqueeze(height), unsqueeze(width)], scope, axis=0)
    return b.op("Reshape", [x, shape4], scope, allowzero=0)


def shufflenet_v2_unit(input_shape: Sequence[int] = (1, 24, 56, 56), seed: int = 0,
                       annotate: bool = True) -> onnx.ModelProto:
    """torchvision ShuffleNetV2 stage-2 start, BN folded: a stride-2 unit (branch1: depthwise
    3x3/2, Conv 1x1, Relu; branch2: Conv 1x1, Relu, depthwise 3x3/2, Conv 1x1, Relu; Concat;
    channel shuffle) to 116 channels, then a stride-1 unit (Split axis 1 with a split input into
    two halves, branch2 on the second, Concat, channel shuffle). `annotate`: see
    _channel_shuffle (False leaves the shuffle's 5-D Reshape unsized for onnx's inference)."""
    _check_image(input_shape, 2, "shufflenet_v2_unit")
    b = _Builder(input_shape, seed)
    n, cin, height, width = input_shape
    half = 58
    out_shape = (n, 2 * half, height // 2, width // 2)

    def branch2(x: str, p: str, c: int, stride: int) -> str:
        x = b.op("Relu", [b.conv(x, f"{p}.branch2.0", c, half, 1, bias=False, fold_bn=True)],
                 f"{p}.branch2.2")
        x = b.conv(x, f"{p}.branch2.3", half, half, 3, stride, group=half, bias=False,
                   fold_bn=True)
        x = b.conv(x, f"{p}.branch2.5", half, half, 1, bias=False, fold_bn=True)
        return b.op("Relu", [x], f"{p}.branch2.7")

    p = "stage2.0"
    y1 = b.conv("input", f"{p}.branch1.0", cin, cin, 3, 2, group=cin, bias=False, fold_bn=True)
    y1 = b.op("Relu", [b.conv(y1, f"{p}.branch1.2", cin, half, 1, bias=False, fold_bn=True)],
              f"{p}.branch1.4")
    y = b.op("Concat", [y1, branch2("input", p, cin, 2)], p, axis=1)
    x = _channel_shuffle(b, y, p, out_shape, annotate)
    p = "stage2.1"
    split = b.const(p, np.array([half, half], np.int64))
    x1, x2 = b.op("Split", [x, split], p, outputs=2, axis=1)
    y = b.op("Concat", [x1, branch2(x2, p, half, 1)], p, axis=1)
    return b.finish(_channel_shuffle(b, y, p, out_shape, annotate), "shufflenet_v2_unit")


def fpn_dbnet(input_shape: Sequence[int] = (1, 3, 256, 256), seed: int = 0) -> onnx.ModelProto:
    """A small DBNet: backbone (BN folded) of a stem Conv 3x3/2 + Relu and 4 stages (Conv 3x3/2,
    Relu, Conv 3x3, Relu; 16, 32, 64, 128 channels at 1/4 .. 1/32); FPN lateral Conv 1x1 to 64,
    top-down Resize (nearest, asymmetric, floor, scales 2) + Add; Conv 3x3 to 16 on each level,
    Resize x8/x4/x2 to 1/4, Concat axis 1; head Conv 3x3, BatchNormalization, Relu,
    ConvTranspose 2x2/2, BatchNormalization, Relu, ConvTranspose 2x2/2 to 1 channel, Sigmoid."""
    _check_image(input_shape, 32, "fpn_dbnet")
    b = _Builder(input_shape, seed)
    x = b.conv("input", "backbone.stem.0", input_shape[1], 16, 3, 2, bias=False, fold_bn=True)
    x = b.op("Relu", [x], "backbone.stem.2")
    cin, levels = 16, []
    for stage, cout in enumerate((16, 32, 64, 128), start=1):
        p = f"backbone.layer{stage}"
        x = b.conv(x, f"{p}.0", cin, cout, 3, 2, bias=False, fold_bn=True)
        x = b.op("Relu", [x], f"{p}.2")
        x = b.conv(x, f"{p}.3", cout, cout, 3, bias=False, fold_bn=True)
        x = b.op("Relu", [x], f"{p}.5")
        levels.append((x, cout))
        cin = cout
    inner = [b.conv(t, f"neck.in{i}", c, 64, 1, bias=False)
             for i, (t, c) in enumerate(levels, start=2)]
    top = inner[3]
    merged = [top]
    for i in (2, 1, 0):
        top = b.op("Add", [inner[i], b.resize(top, "neck", 2.0, "nearest", roi_constant=True)],
                   "neck")
        merged.insert(0, top)
    outs = []
    for i, (t, scale) in enumerate(zip(merged, (1, 2, 4, 8)), start=2):
        y = b.conv(t, f"neck.out{i}.0", 64, 16, 3, bias=False)
        if scale > 1:
            y = b.resize(y, f"neck.out{i}.1", float(scale), "nearest", roi_constant=True)
        outs.append(y)
    x = b.op("Concat", outs[::-1], "neck", axis=1)
    x = b.conv(x, "head.binarize.0", 64, 16, 3, bias=False)
    x = b.op("Relu", [b.bn(x, "head.binarize.1", 16)], "head.binarize.2")
    x = b.conv_transpose(x, "head.binarize.3", 16, 16, 2, 2)
    x = b.op("Relu", [b.bn(x, "head.binarize.4", 16)], "head.binarize.5")
    x = b.conv_transpose(x, "head.binarize.6", 16, 1, 2, 2)
    return b.finish(b.op("Sigmoid", [x], "head.binarize.7"), "fpn_dbnet")


def dilated_tcn(input_shape: Sequence[int] = (1, 16, 256), seed: int = 0) -> onnx.ModelProto:
    """A 1-D temporal conv net of 4 residual blocks, dilations 1, 2, 4, 8, kernel 3, 32
    channels, causal: each block is Conv, Relu, Conv, Relu, Add(residual), Relu, with the
    residual through a Conv 1x1 where channels change. Causal left padding (k - 1) * d is
    written as a Pad node (pads input, as torch exports F.pad) before each Conv in blocks 0 and
    2, and as asymmetric Conv pads [(k - 1) * d, 0] in blocks 1 and 3."""
    if len(input_shape) != 3:
        raise ValueError(f"dilated_tcn needs an (N, C, L) input; got {tuple(input_shape)}")
    b = _Builder(input_shape, seed)
    x, cin = "input", input_shape[1]
    gain = {1: 1.0, 2: 0.4}  # a small second conv keeps the residual sums O(1)
    for block, dilation in enumerate((1, 2, 4, 8)):
        p = f"network.{block}"
        left = 2 * dilation
        y, c = x, cin
        for conv in (1, 2):
            if block % 2 == 0:
                pads = b.init(f"{p}.pad{conv}.pads", np.array([0, 0, left, 0, 0, 0], np.int64))
                y = b.op("Pad", [y, pads], f"{p}.pad{conv}", mode="constant")
                y = b.conv(y, f"{p}.conv{conv}", c, 32, 3, dilation=dilation, pads=[0, 0],
                           rank=1, gain=gain[conv])
            else:
                y = b.conv(y, f"{p}.conv{conv}", c, 32, 3, dilation=dilation, pads=[left, 0],
                           rank=1, gain=gain[conv])
            y = b.op("Relu", [y], f"{p}.relu{conv}")
            c = 32
        residual = x if cin == 32 else b.conv(x, f"{p}.downsample", cin, 32, 1, rank=1)
        x, cin = b.op("Relu", [b.op("Add", [y, residual], p)], f"{p}.relu"), 32
    return b.finish(x, "dilated_tcn")


def se_nearest_block(input_shape: Sequence[int] = (1, 64, 32, 32),
                     seed: int = 0) -> onnx.ModelProto:
    """A squeeze-excitation block (GlobalAveragePool, Flatten, Gemm C -> C/16, Relu, Gemm,
    Sigmoid, Reshape to (N, C, 1, 1) by the initializer shape [-1, C, 1, 1], Mul) followed by
    Upsample-style nearest Resize (asymmetric, floor) at scale 2."""
    b = _Builder(input_shape, seed)
    c = input_shape[1]
    squeeze = max(1, c // 16)
    s = b.op("GlobalAveragePool", ["input"], "se.avg_pool")
    s = b.op("Flatten", [s], "se", axis=1)
    s = b.op("Relu", [b.linear(s, "se.fc.0", c, squeeze)], "se.fc.1")
    s = b.op("Sigmoid", [b.linear(s, "se.fc.2", squeeze, c)], "se.fc.3")
    s = b.op("Reshape", [s, b.init("se.shape", np.array([-1, c, 1, 1], np.int64))], "se",
             allowzero=0)
    x = b.op("Mul", ["input", s], "se")
    return b.finish(b.resize(x, "up", 2.0, "nearest", roi_constant=False), "se_nearest_block")


ARCHITECTURES: dict[str, Callable[..., onnx.ModelProto]] = {
    "resnet18": resnet18,
    "mobilenet_v2": mobilenet_v2,
    "mobilenet_v3_block": mobilenet_v3_block,
    "squeezenet1_1": squeezenet1_1,
    "unet": unet,
    "inception_block": inception_block,
    "densenet_block": densenet_block,
    "shufflenet_v2_unit": shufflenet_v2_unit,
    "fpn_dbnet": fpn_dbnet,
    "dilated_tcn": dilated_tcn,
    "se_nearest_block": se_nearest_block,
}

# Small inputs every builder accepts (pooling and strides still leave >= 1 pixel), for fast tests.
SMALL_INPUTS: dict[str, tuple[int, ...]] = {
    "resnet18": (1, 3, 64, 64),
    "mobilenet_v2": (1, 3, 64, 64),
    "mobilenet_v3_block": (1, 16, 8, 8),
    "squeezenet1_1": (1, 3, 64, 64),
    "unet": (1, 3, 32, 32),
    "inception_block": (1, 32, 8, 8),
    "densenet_block": (1, 16, 8, 8),
    "shufflenet_v2_unit": (1, 24, 16, 16),
    "fpn_dbnet": (1, 3, 64, 64),
    "dilated_tcn": (1, 16, 64),
    "se_nearest_block": (1, 32, 8, 8),
}


# ---------------------------------------------------------------------------------------------
def with_initializers_as_inputs(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of `model` where every initializer is also listed in graph.input after the real
    inputs, as IR v3 files had to do."""
    out = copy.deepcopy(model)
    listed = {i.name for i in out.graph.input}
    for tensor in out.graph.initializer:
        if tensor.name not in listed:
            out.graph.input.append(
                helper.make_tensor_value_info(tensor.name, tensor.data_type, tensor.dims))
    return out


def with_constant_weights(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of `model` with no initializers: each one becomes a Constant node (output named as
    the initializer) placed before the other nodes."""
    out = copy.deepcopy(model)
    constants = [helper.make_node("Constant", [], [t.name], name=f"{t.name}/Constant", value=t)
                 for t in out.graph.initializer]
    names = {t.name for t in out.graph.initializer}
    nodes = constants + list(out.graph.node)
    inputs = [i for i in out.graph.input if i.name not in names]
    del out.graph.node[:], out.graph.initializer[:], out.graph.input[:]
    out.graph.node.extend(nodes)
    out.graph.input.extend(inputs)
    return out


class LightModel(NamedTuple):
    """One of onnx's "light" backend-test models (IR 3, opset 9, weights made by
    ConstantOfShape): the file, its input's name and shape."""
    path: Path
    input_name: str
    input_shape: tuple[int, ...]


def light_models() -> list[LightModel]:
    """The light_*.onnx models shipped in the installed onnx package, sorted by name, with the
    name and static shape of their one runtime input (read from the file)."""
    folder = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
    found = []
    for path in sorted(folder.glob("light_*.onnx")):
        graph = onnx.load(str(path), load_external_data=False).graph
        constants = {t.name for t in graph.initializer}
        (data,) = [i for i in graph.input if i.name not in constants]
        shape = tuple(d.dim_value for d in data.type.tensor_type.shape.dim)
        found.append(LightModel(path, data.name, shape))
    return found
