"""Preset stacks, each a documented real design, and the demo model the app opens on."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from models.kernel_presets import apply_to_filter, gabor_bank, preset_kernel
from models.layers import (AvgPool, BatchNorm, Conv, ConvTranspose, Dense, DepthwiseConv, Flatten,
                           GlobalAvgPool, GlobalMaxPool, LayerSpec, MaxPool, PointwiseConv, ReLU,
                           Sigmoid, Softmax, Tanh)
from models.legacy_blocks import legacy_gated_weight
from models.stack import InputSpec, Stack
from models.templates import insert_template
from models.weights import materialise


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    build: Callable[[], Stack]


def _stack(input_spec: InputSpec, specs: list[LayerSpec]) -> Stack:
    stack = Stack(input_spec)
    for spec in specs:
        stack = stack.appended(spec)
    return materialise(stack)


def lenet5() -> Stack:
    """LeNet-5 (LeCun et al. 1998) with its classic sizes, full C3 connections and average
    pooling: 61,706 parameters on a 32x32 grey digit."""
    return _stack(InputSpec(1, (32, 32)), [
        Conv(out_channels=6, kernel_size=5, padding="valid"), Tanh(), AvgPool(kernel_size=2),
        Conv(out_channels=16, kernel_size=5, padding="valid"), Tanh(), AvgPool(kernel_size=2),
        Conv(out_channels=120, kernel_size=5, padding="valid"), Tanh(), Flatten(),
        Dense(units=84), Tanh(), Dense(units=10), Softmax()])


def vgg_block() -> Stack:
    """The first two blocks of VGG-16 (Simonyan & Zisserman 2014): 3x3 convolutions, same
    padding, ReLU, 2x2 max pooling; 38,720 + 221,440 parameters."""
    return _stack(InputSpec(3, (224, 224)), [
        Conv(out_channels=64), ReLU(), Conv(out_channels=64), ReLU(), MaxPool(),
        Conv(out_channels=128), ReLU(), Conv(out_channels=128), ReLU()])


VGG16_BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))  # (channels, convolutions)


def vgg16(batch: int = 1) -> Stack:
    """VGG-16 (Simonyan & Zisserman 2014, configuration D) at batch x 3 x 224 x 224: 13 3x3
    convolutions with ReLU, five 2x2 max pools, and the 4096-4096-1000 classifier. For sizing and
    benchmarks, not a menu preset: its weights (553 MB) are not drawn."""
    stack = Stack(InputSpec(3, (224, 224), batch))
    for channels, convs in VGG16_BLOCKS:
        for _ in range(convs):
            stack = stack.appended(Conv(out_channels=channels)).appended(ReLU())
        stack = stack.appended(MaxPool())
    stack = stack.appended(Flatten())
    for units in (4096, 4096):
        stack = stack.appended(Dense(units=units)).appended(ReLU())
    return stack.appended(Dense(units=1000))


def mobilenet_block() -> Stack:
    """One MobileNet v1 layer pair (Howard et al. 2017, fig. 3): 3x3 depthwise, BN, ReLU, then
    1x1 pointwise, BN, ReLU; 32 -> 64 channels at 112x112 with 288 + 2,048 weights against a 3x3
    convolution's 18,432."""
    return _stack(InputSpec(32, (112, 112)), [
        DepthwiseConv(bias=False), BatchNorm(), ReLU(),
        PointwiseConv(out_channels=64, bias=False), BatchNorm(), ReLU()])


def dilated_context() -> Stack:
    """The context module's front (Yu & Koltun 2016): 3x3 convolutions dilated 1, 2, 4 whose
    receptive fields grow 3, 7, 15 at full resolution."""
    return _stack(InputSpec(1, (64, 64)), [
        Conv(out_channels=16, dilation=1), ReLU(), Conv(out_channels=16, dilation=2), ReLU(),
        Conv(out_channels=16, dilation=4), ReLU()])


def encoder_decoder() -> Stack:
    """A small convolutional autoencoder: two stride-2 convolutions down, two stride-2 transposed
    convolutions back up to the input's size."""
    return _stack(InputSpec(3, (64, 64)), [
        Conv(out_channels=16, stride=2), ReLU(), Conv(out_channels=32, stride=2), ReLU(),
        ConvTranspose(out_channels=16, kernel_size=2, stride=2), ReLU(),
        ConvTranspose(out_channels=3, kernel_size=2, stride=2), Sigmoid()])


def text_cnn() -> Stack:
    """A text classifier in the style of gated convolutional language models (Dauphin et al.
    2017): Conv1D over 64-dimensional embeddings of 128 tokens, two residual GLU blocks, global
    max pooling over time and a softmax over two classes."""
    stack = Stack(InputSpec(64, (128,))).appended(Conv(rank=1, out_channels=128, kernel_size=3))
    for group, dilation in (("glu1", 1), ("glu2", 2)):
        stack = insert_template(stack, "Gated (GLU)", len(stack) - 1, group=group,
                                kernel_size=3, dilation=dilation, residual=True)
    for spec in (GlobalMaxPool(), Flatten(), Dense(units=2), Softmax()):
        stack = stack.appended(spec)
    stack = materialise(stack)
    # Each block's convolution keeps the numbers the preset has had since its blocks were the
    # gated layers glu1 and glu2: saved results and screenshots stay comparable.
    for index, layer in enumerate(stack.layers):
        if layer.group in ("glu1", "glu2") and isinstance(layer.spec, Conv):
            stack = stack.with_weights(index, {
                key: legacy_gated_weight(stack.seed, layer.group, key, array.shape)
                for key, array in layer.weights.items()})
    return stack


def volume_block() -> Stack:
    """A small C3D-style block (Tran et al. 2015) for 16-frame video or volumes: 3x3x3
    convolutions, spatial-only then full pooling, global average pooling, a 10-way classifier."""
    return _stack(InputSpec(3, (16, 56, 56)), [
        Conv(rank=3, out_channels=16), ReLU(), MaxPool(rank=3, kernel_size=(1, 2, 2),
                                                        stride=(1, 2, 2)),
        Conv(rank=3, out_channels=32), ReLU(), MaxPool(rank=3),
        GlobalAvgPool(), Flatten(), Dense(units=10)])


def demo() -> Stack:
    """The model the app opens on: an image classifier whose first layer holds hand-made edge,
    blur and Gabor kernels, so its feature maps read at a glance on the sample photo."""
    stack = _stack(InputSpec(3, (128, 128)), [
        Conv(out_channels=8), ReLU(), MaxPool(),
        Conv(out_channels=16), ReLU(), MaxPool(),
        Conv(out_channels=32, dilation=2), ReLU(), GlobalAvgPool(), Flatten(),
        Dense(units=10), Softmax()])
    weight = stack.layers[0].weights["W"]
    kernels = [preset_kernel(name, 3) for name in ("sobel x", "sobel y", "laplacian", "sharpen")]
    kernels += list(gabor_bank(3, 4))
    for index, kernel in enumerate(kernels):
        weight = apply_to_filter(weight, index, kernel)
    return stack.with_weights(0, {"W": weight, "B": np.zeros(8, np.float32)})


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("Demo: edges to classes", demo.__doc__ or "", demo),
    Preset("LeNet-5", lenet5.__doc__ or "", lenet5),
    Preset("VGG block", vgg_block.__doc__ or "", vgg_block),
    Preset("MobileNet block", mobilenet_block.__doc__ or "", mobilenet_block),
    Preset("Dilated 1-2-4 context", dilated_context.__doc__ or "", dilated_context),
    Preset("Encoder-decoder", encoder_decoder.__doc__ or "", encoder_decoder),
    Preset("Text CNN with GLU", text_cnn.__doc__ or "", text_cnn),
    Preset("3D volume block", volume_block.__doc__ or "", volume_block),
)}
