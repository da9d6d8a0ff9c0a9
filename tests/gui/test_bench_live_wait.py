"""bench/bench_live.py never hangs: its wait sees a condition that becomes true with no paint
(its first version waited for a paint that never came, and hung), and one that never becomes
true stops the bench with a line naming what it waited for."""
from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_live.py"


@pytest.fixture(scope="module")
def bench_live():
    spec = importlib.util.spec_from_file_location("bench_live", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up by name
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


@pytest.fixture
def bench(bench_live, window):
    return bench_live.LiveBench(window, bench_live.SlotTimes())


def test_a_condition_made_true_by_a_timer_without_a_paint_ends_the_wait_at_once(bench):
    done = []
    QTimer.singleShot(50, lambda: done.append(True))  # nothing is drawn or painted
    start = time.perf_counter()
    bench.wait(lambda: bool(done), "the timer", timeout_s=10)
    assert done and time.perf_counter() - start < 2


def test_a_condition_already_true_returns_without_running_the_loop(bench):
    start = time.perf_counter()
    bench.wait(lambda: True, "nothing", timeout_s=10)
    assert time.perf_counter() - start < 0.1


def test_a_condition_never_met_stops_the_bench_naming_what_it_waited_for(bench):
    start = time.perf_counter()
    with pytest.raises(SystemExit, match=r"^bench_live: timed out after 0\.3 s waiting for the "
                                         r"cards of model\.onnx$"):
        bench.wait(lambda: False, "the cards of model.onnx", timeout_s=0.3)
    assert 0.25 <= time.perf_counter() - start < 3  # Qt may fire a coarse timer 5% early


def test_weight_names_give_groups_to_nodes_whose_names_carry_none(bench_live, tmp_path):
    """A Caffe2-style graph: nodes n0.. and weights conv1_w_0, conv1/bn_*_0, one made by
    ConstantOfShape and one an Unsqueeze of a weight, as in onnx's light DenseNet-121."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = [numpy_helper.from_array(np.ones(4, np.float32), f"conv1/bn_{k}_0")
               for k in ("scale", "bias", "mean", "var")]
    weights += [numpy_helper.from_array(np.array([4, 3, 3, 3], np.int64), "conv1_w_0__SHAPE"),
                numpy_helper.from_array(np.ones(4, np.float32), "conv1/bn_w_0"),
                numpy_helper.from_array(np.array([1, 2], np.int64), "axes")]
    nodes = [
        helper.make_node("ConstantOfShape", ["conv1_w_0__SHAPE"], ["conv1_w_0"], name=""),
        helper.make_node("Conv", ["data", "conv1_w_0"], ["r0"], name="n0"),
        helper.make_node("BatchNormalization", ["r0", "conv1/bn_scale_0", "conv1/bn_bias_0",
                                                "conv1/bn_mean_0", "conv1/bn_var_0"], ["r1"],
                         name="n1"),
        helper.make_node("Unsqueeze", ["conv1/bn_w_0", "axes"], ["r2"], name=""),
        helper.make_node("Mul", ["r1", "r2"], ["r3"], name="n3"),
        helper.make_node("Relu", ["r3"], ["r4"], name="n4"),
        helper.make_node("Relu", ["data"], ["r5"], name="n5"),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("r4", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("r5", TensorProto.FLOAT, None)], weights)
    path = tmp_path / "caffe2.onnx"
    onnx.save(helper.make_model(graph), str(path))
    assert bench_live.weight_groups(path) == {
        "n0": "conv1", "n1": "conv1/bn", "n3": "conv1/bn", "n4": "conv1/bn", "n5": ""}
