"""The summary of a graph: a row per node naming its inputs, a row of totals per group."""
from __future__ import annotations

import math
import re

from models.analysis import analyse
from models.layers import Add, Conv, ReLU
from models.stack import InputSpec, Layer, Stack
from models.summary_table import summary_json, summary_table


def _net() -> Stack:
    layers = [Layer("stem", Conv(out_channels=4)),
              Layer("conv1", Conv(out_channels=4), group="layer1/0"),
              Layer("relu", ReLU(), group="layer1/0"),
              Layer("add", Add(), inputs=("relu", "stem"), group="layer1/0"),
              Layer("conv2", Conv(out_channels=4, stride=2), group="layer1"),
              Layer("head", Conv(out_channels=2, kernel_size=1))]
    return Stack(InputSpec(3, (8, 8))).with_layers(layers)


def test_group_totals_sum_their_nodes_without_counting_twice():
    report = analyse(_net())
    doc = summary_json(report)
    groups = {g["name"]: g for g in doc["groups"]}
    by_name = {layer["name"]: layer for layer in doc["layers"]}
    inner = ["conv1", "relu", "add"]
    assert groups["layer1/0"]["params"] == sum(by_name[n]["params"] for n in inner)
    assert groups["layer1"]["params"] == groups["layer1/0"]["params"] + by_name["conv2"]["params"]
    assert groups["layer1"]["macs"] == sum(by_name[n]["macs"] for n in inner + ["conv2"])
    assert groups["layer1"]["activation_bytes"] == 4 * sum(
        math.prod(by_name[n]["output_shape"]) for n in inner + ["conv2"])
    assert groups["layer1"]["output_shape"] == by_name["conv2"]["output_shape"] == [1, 4, 4, 4]
    assert doc["total_params"] == sum(layer["params"] for layer in doc["layers"])
    assert by_name["add"]["inputs"] == ["relu", "stem"] and by_name["stem"]["inputs"] == ["input"]
    assert by_name["add"]["group"] == "layer1/0" and by_name["add"]["engine"] == "numpy"


def test_table_puts_each_group_row_before_its_first_node_and_lists_inputs():
    lines = summary_table(analyse(_net())).splitlines()
    assert "Inputs" in lines[1]
    names = [re.split(r"\s{2,}", line.strip())[0] for line in lines[3:9]]
    assert names == ["stem (Conv2D)", "layer1/ (4 layers)", "0/ (3 layers)", "conv1 (Conv2D)",
                     "relu (ReLU)", "add (Add)"]
    assert lines[8].rstrip().endswith("relu, stem")
