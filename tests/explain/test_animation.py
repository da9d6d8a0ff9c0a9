"""The sliding-window animation: output sizes worked out by hand, covered cells against a
brute-force enumeration (and, for transposed convolution, against its scatter definition), the
layer mapping, the saved GIF and PNG frames, and the panel driven under Qt."""
from __future__ import annotations

from itertools import product
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gui.explain_animation import (EXPORT_CELL, AnimationPanel, figure_size, frame_paths,
                                   save_gif, save_png_frames)
from gui.theme import apply_theme
from models.conv_animation import (AxisSettings, Cell, animate_layer, build_animation,
                                   plan_axis)
from models.errors import ConfigError
from models.layers import Conv, ConvTranspose, MaxPool, ReLU

P, I, Z = Cell.PADDING, Cell.INPUT, Cell.INSERTED_ZERO

# (settings of each axis, output shape, grid shape), sizes worked out by hand from
# out = floor((W + P_b + P_e - D*(F-1) - 1) / S) + 1 and, transposed,
# out = S*(W-1) + D*(F-1) + 1 - P_b - P_e + output_padding.
CASES = [
    # input 5, kernel 3, pad 1, stride 2: (5 + 2 - 3) / 2 + 1 = 3
    ([AxisSettings(5, 3, 2, 1, 1)] * 2, (3, 3), (7, 7)),
    # dilation 2, kernel 3 spans 5 cells on 7 with no padding: 7 - 5 + 1 = 3
    ([AxisSettings(7, 3, 1, 0, 0, 2)] * 2, (3, 3), (7, 7)),
    # transposed kernel 3 stride 2 on 3: 2*2 + 3 = 7; 1 zero between cells: 3 + 2 = 5, plus
    # kernel - 1 = 2 padding each side = 9
    ([AxisSettings(3, 3, 2, transposed=True)] * 2, (7, 7), (9, 9)),
    # transposed, cropped 1 each side, output padding 1: 2*2 + 3 - 2 + 1 = 6; grid 5 + 1 + 2 = 8
    ([AxisSettings(3, 3, 2, 1, 1, transposed=True, output_padding=1)] * 2, (6, 6), (8, 8)),
    # different axes: 4 tall kernel 2 stride 2 -> 2; 6 wide kernel 3 pad 0+1 -> 6 + 1 - 3 + 1 = 5
    ([AxisSettings(4, 2, 2), AxisSettings(6, 3, 1, 0, 1)], (2, 5), (4, 7)),
    # 1D: 8 long, kernel 3 stride 3, padding 1 + 0: (8 + 1 - 3) / 3 + 1 = 3
    ([AxisSettings(8, 3, 3, 1, 0)], (3,), (9,)),
    # ceil mode pooling: 5 with kernel 2 stride 2 -> ceil(3 / 2) + 1 = 3, grid grows to 6
    ([AxisSettings(5, 2, 2, ceil_mode=True)] * 2, (3, 3), (6, 6)),
]


@pytest.mark.parametrize("axes, output, grid", CASES)
def test_frames_write_every_output_cell_once(axes, output, grid) -> None:
    animation = build_animation(axes)
    assert animation.output_shape == output
    assert animation.grid_shape == grid
    written = [animation.frame(i).output for i in range(animation.frame_count)]
    assert len(written) == int(np.prod(output))
    assert sorted(written) == list(product(*(range(n) for n in output)))


def test_transposed_grid_inserts_zeros_and_pads() -> None:
    plan = plan_axis(AxisSettings(3, 3, 2, transposed=True))
    assert plan.kinds == (P, P, I, Z, I, Z, I, P, P)
    assert plan.input_index == (-1, -1, 0, -1, 1, -1, 2, -1, -1)
    kinds = build_animation([AxisSettings(3, 3, 2, transposed=True)] * 2).kinds()
    assert (kinds == I).sum() == 9
    assert (kinds == Z).sum() == 5 * 5 - 9
    assert (kinds == P).sum() == 9 * 9 - 5 * 5


def test_direct_grid_is_input_inside_padding() -> None:
    plan = plan_axis(AxisSettings(4, 3, 1, 2, 1))
    assert plan.kinds == (P, P, I, I, I, I, P)
    assert plan.input_index == (-1, -1, 0, 1, 2, 3, -1)


def _brute_covered(grid: tuple[int, ...], output: tuple[int, ...], kernel: tuple[int, ...],
                   stride: tuple[int, ...], dilation: tuple[int, ...]) -> set[tuple[int, ...]]:
    """Every grid cell some kernel tap of `output` lands on, by scanning cells and taps."""
    covered = set()
    for cell in product(*(range(n) for n in grid)):
        for tap in product(*(range(k) for k in kernel)):
            if all(c == o * s + t * d for c, o, s, t, d in zip(cell, output, stride, tap, dilation)):
                covered.add(cell)
    return covered


@pytest.mark.parametrize("axes", [
    [AxisSettings(5, 3, 2, 1, 1)] * 2,
    [AxisSettings(7, 3, 1, 0, 0, 2)] * 2,
    [AxisSettings(6, 2, 3, 1, 2, 3), AxisSettings(5, 3, 2, 0, 0, 1)],
    [AxisSettings(9, 4, 2, 1, 1, 2)],
])
def test_covered_cells_match_brute_force(axes) -> None:
    animation = build_animation(axes)
    for i in range(animation.frame_count):
        frame = animation.frame(i)
        expected = _brute_covered(animation.grid_shape, frame.output,
                                  tuple(a.kernel for a in axes), tuple(a.stride for a in axes),
                                  tuple(a.dilation for a in axes))
        assert set(frame.covered) == expected


def test_dilation_leaves_holes_uncovered() -> None:
    animation = build_animation([AxisSettings(7, 3, 1, 0, 0, 2)] * 2)
    frame = animation.frame(4)  # output (1, 1): taps at rows and columns 1, 3, 5
    assert frame.output == (1, 1)
    assert frame.window_bounds() == ((1, 5), (1, 5))
    assert set(frame.covered) == set(product((1, 3, 5), (1, 3, 5)))
    for hole in [(2, 2), (1, 2), (4, 3), (5, 4)]:
        assert hole not in frame.covered


@pytest.mark.parametrize("settings", [
    AxisSettings(3, 3, 2, transposed=True),
    AxisSettings(4, 3, 2, 1, 1, transposed=True, output_padding=1),
    AxisSettings(3, 2, 3, 0, 0, 2, transposed=True),
    AxisSettings(4, 4, 2, 2, 2, transposed=True),
    AxisSettings(4, 3, 2, 3, 3, transposed=True),  # crops past the equivalent padding
])
def test_transposed_window_reads_what_the_scatter_writes(settings) -> None:
    """Input i of a transposed convolution paints output i*S + t*D - P_begin for every tap t;
    the animation's window for output o must cover exactly the inputs that paint o."""
    s = settings
    plan = plan_axis(s)
    expected_out = s.stride * (s.size - 1) + s.dilation * (s.kernel - 1) + 1 - s.pad_begin \
        - s.pad_end + s.output_padding
    assert plan.output_size == expected_out
    for o in range(plan.output_size):
        painters = {i for i in range(s.size) for t in range(s.kernel)
                    if i * s.stride + t * s.dilation - s.pad_begin == o}
        read = {plan.input_index[g] for g in plan.window(o) if plan.kinds[g] == I}
        assert read == painters


def test_a_window_with_no_output_is_refused() -> None:
    with pytest.raises(ValueError):
        plan_axis(AxisSettings(3, 5))


def test_layer_settings_are_played_on_a_small_grid() -> None:
    spec = Conv(kernel_size=3, stride=2, padding="explicit", pads=1)
    layer = animate_layer(spec, (3, 224, 224))
    assert layer.small
    assert layer.real_input == (224, 224)
    assert layer.real_output == (112, 112)
    for plan in layer.animation.axes:
        s = plan.settings
        assert (s.kernel, s.stride, s.pad_begin, s.pad_end, s.dilation) == (3, 2, 1, 1, 1)
        assert s.size == 5
    assert layer.animation.output_shape == (3, 3)


def test_same_padding_is_worked_out_for_the_small_input() -> None:
    # SAME_UPPER on 5 with kernel 4 stride 2: total = (3 - 1)*2 + 4 - 5 = 3, so 1 + 2.
    layer = animate_layer(Conv(kernel_size=4, stride=2, padding="same"), (1, 64, 64))
    s = layer.animation.axes[0].settings
    assert (s.size, s.pad_begin, s.pad_end) == (5, 1, 2)
    assert layer.animation.output_shape == (3, 3)


def test_small_input_grows_until_the_stride_shows() -> None:
    # Kernel 11 stride 4 pads 2: 5 cells fit no window; 11 gives (11 + 4 - 11) / 4 + 1 = 2.
    layer = animate_layer(Conv(kernel_size=11, stride=4, padding="explicit", pads=2),
                          (3, 224, 224))
    assert [p.settings.size for p in layer.animation.axes] == [11, 11]
    assert layer.animation.output_shape == (2, 2)


def test_small_real_inputs_and_other_layers() -> None:
    layer = animate_layer(ConvTranspose(kernel_size=3, stride=2), (4, 3, 3))
    assert not layer.small and layer.animation.output_shape == (7, 7)
    dilated = animate_layer(Conv(kernel_size=3, dilation=2, padding="valid"), (2, 7, 7))
    assert not dilated.small and dilated.animation.output_shape == (3, 3)
    volume = animate_layer(MaxPool(rank=3, kernel_size=2, stride=2), (1, 4, 8, 8))
    assert volume.axes == (1, 2) and volume.animation.output_shape == (2, 2)
    with pytest.raises(ValueError):
        animate_layer(ReLU(), (3, 8, 8))
    with pytest.raises(ConfigError):
        animate_layer(Conv(kernel_size=7, padding="valid"), (3, 5, 5))


def test_gif_has_every_frame_at_the_figure_size(tmp_path: Path, qapp) -> None:
    animation = build_animation([AxisSettings(5, 3, 2, 1, 1)] * 2)
    path = tmp_path / "conv.gif"
    save_gif(animation, path)
    with Image.open(path) as gif:
        assert gif.format == "GIF"
        assert gif.n_frames == 9
        size = figure_size(animation, EXPORT_CELL)
        assert gif.size == (size.width(), size.height())
        assert gif.info.get("loop") == 0
        first = np.asarray(gif.convert("RGB"))
        gif.seek(8)
        last = np.asarray(gif.convert("RGB"))
    assert not np.array_equal(first, last)  # the window moved and the output filled in
    assert [p.name for p in tmp_path.iterdir()] == ["conv.gif"]


def test_saving_into_a_missing_folder_leaves_nothing(tmp_path: Path, qapp) -> None:
    animation = build_animation([AxisSettings(5, 3, 2, 1, 1)])
    with pytest.raises(FileNotFoundError, match="missing"):
        save_gif(animation, tmp_path / "missing" / "conv.gif")
    with pytest.raises(FileNotFoundError, match="missing"):
        save_png_frames(animation, tmp_path / "missing" / "conv.png")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_rename_leaves_no_temporary_file(tmp_path: Path, qapp) -> None:
    animation = build_animation([AxisSettings(5, 3, 2, 1, 1)])
    (tmp_path / "taken.gif").mkdir()  # a folder where the file should go: the rename fails
    with pytest.raises(OSError):
        save_gif(animation, tmp_path / "taken.gif")
    assert [p.name for p in tmp_path.iterdir()] == ["taken.gif"]
    assert list((tmp_path / "taken.gif").iterdir()) == []


def test_png_frames_are_numbered_files(tmp_path: Path, qapp) -> None:
    animation = build_animation([AxisSettings(6, 2, 2)])
    paths = save_png_frames(animation, tmp_path / "pool.png")
    assert [p.name for p in paths] == ["pool-001.png", "pool-002.png", "pool-003.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [p.name for p in paths]
    size = figure_size(animation, EXPORT_CELL)
    for path in paths:
        with Image.open(path) as image:
            assert image.size == (size.width(), size.height())
    assert frame_paths(tmp_path / "x.png", 1200)[0].name == "x-0001.png"


@pytest.fixture
def panel(qtbot) -> AnimationPanel:
    apply_theme("dark")
    widget = AnimationPanel()
    widget.resize(800, 520)
    qtbot.addWidget(widget)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def _colours(widget) -> int:
    image = widget.grab().toImage()
    pixels = {image.pixel(x, y) for x in range(0, image.width(), 7)
              for y in range(0, image.height(), 7)}
    return len(pixels)


def test_panel_steps_through_a_layer(panel: AnimationPanel, qtbot) -> None:
    panel.set_layer(Conv(kernel_size=3, stride=2, padding="explicit", pads=1), (3, 32, 32))
    assert panel.frame_count == 9
    assert "stride 2" in panel.caption.text() and "small 5×5" in panel.caption.text()
    assert "32×32 → 16×16" in panel.caption.text()
    seen = []
    panel.frameChanged.connect(seen.append)
    before = panel.canvas.grab().toImage()
    panel.next_button.click()
    panel.next_button.click()
    assert panel.frame_index == 2 and seen == [1, 2]
    assert panel.canvas.grab().toImage() != before
    panel.back_button.click()
    assert panel.frame_index == 1
    panel.set_frame(8)
    panel.step(1)
    assert panel.frame_index == 0  # wraps around
    assert _colours(panel.canvas) > 4


def test_panel_plays_at_the_chosen_speed(panel: AnimationPanel, qtbot) -> None:
    panel.set_layer(Conv(kernel_size=3, padding="valid"), (1, 6, 6))
    panel.speed_box.setCurrentIndex(panel.speed_box.findData(4.0))
    panel.play()
    assert panel.playing and panel.timer.interval() == 175
    with qtbot.waitSignal(panel.frameChanged, timeout=2000):
        pass
    assert panel.frame_index >= 1
    panel.pause()
    assert not panel.playing and panel.play_button.text() == "Play"


def test_panel_explains_layers_it_cannot_animate(panel: AnimationPanel) -> None:
    panel.set_layer(ReLU(), (3, 8, 8))
    assert panel.layer_animation is None
    assert not panel.gif_button.isEnabled() and not panel.play_button.isEnabled()
    assert "ReLU" in panel.message.text()
    panel.set_layer(Conv(kernel_size=9, padding="valid"), (3, 5, 5))
    assert panel.layer_animation is None and "cannot run" in panel.message.text()


def test_panel_saves_gif_and_reports_a_failed_save(panel: AnimationPanel, tmp_path: Path,
                                                   monkeypatch) -> None:
    panel.set_layer(ConvTranspose(kernel_size=3, stride=2), (1, 3, 3))
    errors = []
    monkeypatch.setattr(panel, "show_error", lambda title, message: errors.append(message))
    monkeypatch.setattr(panel, "choose_gif_path", lambda: str(tmp_path / "up"))
    assert panel.save_gif_dialog() == tmp_path / "up.gif"
    with Image.open(tmp_path / "up.gif") as gif:
        assert gif.n_frames == 49
    monkeypatch.setattr(panel, "choose_frames_path", lambda: str(tmp_path / "no" / "f.png"))
    assert panel.save_frames_dialog() == []
    assert len(errors) == 1 and "does not exist" in errors[0]
    assert [p.name for p in tmp_path.iterdir()] == ["up.gif"]
