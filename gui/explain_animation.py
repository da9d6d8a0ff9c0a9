"""The layer's sliding window, animated in the style of Dumoulin & Visin's convolution-arithmetic
figures: a blue input grid, dashed white padding (and grey inserted zeros for a transposed
convolution), the shaded kernel taps moving over it, the cyan output filling in cell by cell.

The frames come from models.conv_animation; this module only draws them (with QPainter, on the
widget or into a QImage) and writes them out as an animated GIF or numbered PNG files, each file
written atomically.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from PySide6.QtCore import QBuffer, QIODevice, QPointF, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QImage, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import (QComboBox, QFileDialog, QHBoxLayout, QLabel, QMessageBox,
                               QPushButton, QSizePolicy, QSlider, QToolButton, QVBoxLayout,
                               QWidget)

from gui.theme import current_theme, mute
from models.atomic import write_atomic
from models.conv_animation import Cell, ConvAnimation, LayerAnimation, animate_layer
from models.errors import ConfigError
from models.explain_formulas import transposed_size_row, window_size_row
from models.layers import LayerSpec, Shape
from models.layers.base import AXIS_NAMES

FRAME_MS = 700          # one frame at 1x speed
LAST_FRAME_HOLD = 3     # the finished output stays this many frames before the loop restarts
SPEEDS = (0.5, 1.0, 2.0, 4.0)
EXPORT_CELL = 32        # cell size in pixels of saved frames
MIN_CELL, MAX_CELL = 10, 44
MARGIN, TITLE_HEIGHT, LEGEND_HEIGHT = 14, 22, 26


@dataclass(frozen=True)
class FigureColors:
    """The figure's colours; input blue and output cyan as in the convolution-arithmetic figures."""
    background: str
    text: str
    input: str
    input_border: str
    padding: str
    padding_border: str
    inserted: str
    kernel: QColor
    kernel_border: str
    output: str
    output_current: str
    output_empty: str


LIGHT_FIGURE = FigureColors(
    background="#ffffff", text="#1f2227", input="#5b9bd5", input_border="#2e5f8f",
    padding="#ffffff", padding_border="#7a8594", inserted="#dfe3e8", kernel=QColor(12, 35, 80, 150),
    kernel_border="#0b1f47", output="#59d2cc", output_current="#16827c", output_empty="#9aa0a8")
DARK_FIGURE = FigureColors(
    background="#181a1f", text="#e6e8eb", input="#4f8fcc", input_border="#9cc3ea",
    padding="#dfe3e8", padding_border="#5d6673", inserted="#98a1ad", kernel=QColor(6, 20, 50, 170),
    kernel_border="#ffd166", output="#4cc9c2", output_current="#1c8a84", output_empty="#6b717a")


def figure_colors(theme: str) -> FigureColors:
    return DARK_FIGURE if theme == "dark" else LIGHT_FIGURE


def _legend(animation: ConvAnimation) -> list[tuple[str, str]]:
    """(label, kind) of each legend entry the animation needs."""
    kinds = set(animation.kinds().ravel().tolist())
    entries = [("input", "input")]
    if Cell.PADDING in kinds:
        entries.append(("padding (zero)", "padding"))
    if Cell.INSERTED_ZERO in kinds:
        entries.append(("inserted zero", "inserted"))
    return entries + [("kernel taps", "kernel"), ("output", "output")]


def _figure_font(base: QFont | None = None) -> QFont:
    font = QFont(base) if base is not None else QFont()
    font.setPixelSize(13)
    return font


def _output_title(animation: ConvAnimation, index: int) -> str:
    return (f"output {'×'.join(map(str, animation.output_shape))}  ·  "
            f"step {index + 1}/{animation.frame_count}")


def figure_size(animation: ConvAnimation, cell: int) -> QSize:
    """Pixels a frame takes at `cell` pixels per grid cell: input grid, gap, output grid (or its
    title, if wider), with the legend below."""
    rows_in, cols_in = _rows_cols(animation.grid_shape)
    rows_out, cols_out = _rows_cols(animation.output_shape)
    metrics = QFontMetrics(_figure_font())
    out_left = MARGIN + cols_in * cell + _gap(cell)
    title = metrics.horizontalAdvance(_output_title(animation, animation.frame_count - 1))
    legend = sum(30 + metrics.horizontalAdvance(label) for label, _ in _legend(animation))
    width = max(out_left + max(cols_out * cell, title), MARGIN + legend) + MARGIN
    height = 2 * MARGIN + TITLE_HEIGHT + max(rows_in, rows_out) * cell + LEGEND_HEIGHT + cell // 2
    return QSize(width, height)


def fitting_cell(animation: ConvAnimation, size: QSize) -> int:
    """The largest cell size (within MIN_CELL..MAX_CELL) whose figure fits in `size`."""
    cell = MAX_CELL
    while cell > MIN_CELL and not (figure_size(animation, cell).width() <= size.width()
                                   and figure_size(animation, cell).height() <= size.height()):
        cell -= 1
    return cell


def _rows_cols(shape: tuple[int, ...]) -> tuple[int, int]:
    return (1, shape[0]) if len(shape) == 1 else (shape[0], shape[1])


def _gap(cell: int) -> int:
    return max(3 * cell, 70)


def paint_frame(painter: QPainter, animation: ConvAnimation, index: int, colors: FigureColors,
                cell: int, origin: QPointF = QPointF(0, 0)) -> None:
    """Draw frame `index` with its top-left corner at origin (see figure_size for the extent)."""
    frame = animation.frame(index)
    painter.save()
    painter.translate(origin)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setFont(_figure_font(painter.font()))
    kinds = animation.kinds().reshape(_rows_cols(animation.grid_shape))
    rows_in, cols_in = kinds.shape
    top = MARGIN + TITLE_HEIGHT
    fills = {Cell.INPUT: (colors.input, colors.input_border, Qt.PenStyle.SolidLine),
             Cell.PADDING: (colors.padding, colors.padding_border, Qt.PenStyle.DashLine),
             Cell.INSERTED_ZERO: (colors.inserted, colors.padding_border, Qt.PenStyle.DotLine)}

    def cell_rect(left: float, row: int, col: int) -> QRectF:
        return QRectF(left + col * cell, top + row * cell, cell, cell).adjusted(1, 1, -1, -1)

    for (row, col), kind in ((rc, kinds[rc]) for rc in _cells(rows_in, cols_in)):
        fill, border, style = fills[Cell(int(kind))]
        painter.setPen(QPen(QColor(border), 1, style))
        painter.setBrush(QColor(fill))
        painter.drawRect(cell_rect(MARGIN, row, col))
    covered = [c if len(c) == 2 else (0, c[0]) for c in frame.covered]
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(colors.kernel)
    for row, col in covered:
        painter.drawRect(cell_rect(MARGIN, row, col))
    bounds = frame.window_bounds()
    (r0, r1), (c0, c1) = bounds if len(bounds) == 2 else ((0, 0), bounds[0])
    painter.setPen(QPen(QColor(colors.kernel_border), 2.5))
    painter.setBrush(Qt.BrushStyle.NoBrush)
    painter.drawRect(QRectF(MARGIN + c0 * cell, top + r0 * cell, (c1 - c0 + 1) * cell,
                            (r1 - r0 + 1) * cell))

    rows_out, cols_out = _rows_cols(animation.output_shape)
    out_left = MARGIN + cols_in * cell + _gap(cell)
    current = frame.output if len(frame.output) == 2 else (0, frame.output[0])
    for row, col in _cells(rows_out, cols_out):
        written = (row, col) <= current
        painter.setPen(QPen(QColor(colors.output_current if written else colors.output_empty), 1,
                            Qt.PenStyle.SolidLine if written else Qt.PenStyle.DashLine))
        painter.setBrush(QColor(colors.output_current if (row, col) == current else colors.output)
                         if written else Qt.BrushStyle.NoBrush)
        painter.drawRect(cell_rect(out_left, row, col))
    # The arrow from the window to the output: what this step computes.
    painter.setPen(QPen(QColor(colors.text), 1.5))
    arrow_y = top + min(rows_in, rows_out) * cell / 2
    start, end = MARGIN + cols_in * cell + 12, out_left - 12
    painter.drawLine(QPointF(start, arrow_y), QPointF(end, arrow_y))
    painter.drawLine(QPointF(end, arrow_y), QPointF(end - 7, arrow_y - 5))
    painter.drawLine(QPointF(end, arrow_y), QPointF(end - 7, arrow_y + 5))

    painter.setPen(QColor(colors.text))
    grid_text = "×".join(map(str, animation.grid_shape))
    padded = bool((kinds == Cell.PADDING).any())
    painter.drawText(QPointF(MARGIN, MARGIN + 13),
                     f"input{' with padding' if padded else ''} ({grid_text})")
    painter.drawText(QPointF(out_left, MARGIN + 13), _output_title(animation, index))
    _paint_legend(painter, animation, colors, top + max(rows_in, rows_out) * cell + cell // 2,
                  fills)
    painter.restore()


def _cells(rows: int, cols: int) -> list[tuple[int, int]]:
    return [(r, c) for r in range(rows) for c in range(cols)]


def _paint_legend(painter: QPainter, animation: ConvAnimation, colors: FigureColors, y: float,
                  fills: dict[Cell, tuple[str, str, Qt.PenStyle]]) -> None:
    x = float(MARGIN)
    for label, kind in _legend(animation):
        swatch = QRectF(x, y + 4, 16, 16)
        if kind == "kernel":
            painter.setPen(QPen(QColor(colors.kernel_border), 2))
            painter.setBrush(QColor(colors.input))
            painter.drawRect(swatch)
            painter.setBrush(colors.kernel)
            painter.drawRect(swatch)
        elif kind == "output":
            painter.setPen(QPen(QColor(colors.output_current), 1))
            painter.setBrush(QColor(colors.output))
            painter.drawRect(swatch)
        else:
            fill, border, style = fills[{"input": Cell.INPUT, "padding": Cell.PADDING,
                                         "inserted": Cell.INSERTED_ZERO}[kind]]
            painter.setPen(QPen(QColor(border), 1, style))
            painter.setBrush(QColor(fill))
            painter.drawRect(swatch)
        painter.setPen(QColor(colors.text))
        painter.drawText(QPointF(x + 22, y + 17), label)
        x += 30 + painter.fontMetrics().horizontalAdvance(label)


def render_frame(animation: ConvAnimation, index: int, colors: FigureColors = LIGHT_FIGURE,
                 cell: int = EXPORT_CELL) -> QImage:
    """Frame `index` as an RGB QImage of figure_size(animation, cell)."""
    size = figure_size(animation, cell)
    image = QImage(size, QImage.Format.Format_RGB32)
    image.fill(QColor(colors.background))
    painter = QPainter(image)
    paint_frame(painter, animation, index, colors, cell)
    painter.end()
    return image


def _pil_image(image: QImage) -> Image.Image:
    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    return Image.frombuffer("RGB", (rgb.width(), rgb.height()), bytes(rgb.constBits()), "raw",
                            "RGB", rgb.bytesPerLine(), 1).copy()


def _check_folder(path: Path) -> None:
    """Raise FileNotFoundError, naming the folder, before anything is written into it."""
    folder = path.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"the folder {folder} does not exist; choose another folder")


def save_gif(animation: ConvAnimation, path: str | Path, colors: FigureColors = LIGHT_FIGURE,
             frame_ms: int = FRAME_MS) -> None:
    """Write every frame to path as a looping GIF, atomically (the last frame held longer).

    Raises FileNotFoundError when the folder does not exist and OSError when it cannot be
    written; no file is left behind then.
    """
    path = Path(path)
    _check_folder(path)
    frames = [_pil_image(render_frame(animation, i, colors)) for i in range(animation.frame_count)]
    durations = [frame_ms] * (len(frames) - 1) + [frame_ms * LAST_FRAME_HOLD]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:],
                   duration=durations, loop=0)
    write_atomic(path, buffer.getvalue())


def frame_paths(path: str | Path, count: int) -> list[Path]:
    """The numbered files save_png_frames writes for base path `name.png`: name-001.png, ..."""
    path = Path(path)
    digits = max(3, len(str(count)))
    return [path.with_name(f"{path.stem}-{i + 1:0{digits}d}.png") for i in range(count)]


def save_png_frames(animation: ConvAnimation, path: str | Path,
                    colors: FigureColors = LIGHT_FIGURE) -> list[Path]:
    """Write frame i to the i-th of frame_paths(path, frame_count), each atomically; returns
    them. Raises FileNotFoundError when the folder does not exist (nothing written)."""
    _check_folder(Path(path))
    paths = frame_paths(path, animation.frame_count)
    for i, target in enumerate(paths):
        buffer = QBuffer()
        buffer.open(QIODevice.OpenModeFlag.WriteOnly)
        render_frame(animation, i, colors).save(buffer, "PNG")
        write_atomic(target, bytes(buffer.data()))
    return paths


def _axes_text(values: list[int]) -> str:
    return str(values[0]) if len(set(values)) == 1 else "×".join(map(str, values))


def caption_text(layer: LayerAnimation) -> str:
    """The caption: the settings, what the grid is, and the output size formula per axis."""
    plans = layer.animation.axes
    settings = [p.settings for p in plans]
    names = AXIS_NAMES[layer.spec.rank]  # type: ignore[attr-defined]
    pads = " × ".join(f"{s.pad_begin}+{s.pad_end}" for s in settings) \
        if len({(s.pad_begin, s.pad_end) for s in settings}) > 1 \
        else f"{settings[0].pad_begin}+{settings[0].pad_end}"
    transposed = settings[0].transposed
    parts = [f"<b>{layer.spec.type_name}</b>: kernel {_axes_text([s.kernel for s in settings])}, "
             f"stride {_axes_text([s.stride for s in settings])}, "
             f"{'crop' if transposed else 'padding'} {pads} (begin+end), "
             f"dilation {_axes_text([s.dilation for s in settings])}"
             + (f", output padding {_axes_text([s.output_padding for s in settings])}"
                if transposed else "")]
    small = "×".join(str(s.size) for s in settings)
    real_in = "×".join(map(str, layer.real_input))
    real_out = "×".join(map(str, layer.real_output))
    if layer.small:
        parts.append(f"The layer's own settings on a small {small} input (the layer itself maps "
                     f"{real_in} → {real_out}).")
    else:
        parts.append(f"The layer's real input: {real_in} → {real_out}.")
    if layer.spec.rank == 3:  # type: ignore[attr-defined]
        parts.append("A 3D layer: shown on its last two axes (height and width).")
    if transposed:
        zeros = [s.stride - 1 for s in settings]
        inserted = ("no zeros inserted" if set(zeros) == {0} else
                    f"{_axes_text(zeros)} zero{'' if set(zeros) == {1} else 's'} inserted "
                    f"between input cells")
        parts.append(f"Drawn as the direct convolution it equals: {inserted}, padded by "
                     f"span − 1 − crop, the kernel flipped and moved by 1.")
    rows = []
    for plan, axis in zip(plans, layer.axes):
        s = plan.settings
        row = (transposed_size_row(s.size, s.kernel, s.stride, s.dilation, s.pad_begin,
                                   s.pad_end, s.output_padding, "") if transposed else
               window_size_row(s.size, s.kernel, s.stride, s.dilation, s.pad_begin, s.pad_end,
                               s.ceil_mode, ""))
        rows.append(f"{row.numbers} = {row.value}")
    labels = [f"Output {names[a]}" if len(names) > 1 else "Output length" for a in layer.axes]
    if len(rows) > 1 and len(set(rows)) == 1:
        labels, rows = ["Output, each axis"], rows[:1]
    parts += [f"{label}: {numbers}" for label, numbers in zip(labels, rows)]
    return "<br>".join(parts)


class _Canvas(QWidget):
    """Paints the panel's current frame, as large as fits, in the theme's figure colours."""

    def __init__(self, panel: AnimationPanel) -> None:
        super().__init__(panel)
        self.panel = panel
        self.setMinimumSize(320, 200)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        colors = figure_colors(current_theme())
        painter.fillRect(self.rect(), QColor(colors.background))
        layer = self.panel.layer_animation
        if layer is not None:
            cell = fitting_cell(layer.animation, self.size())
            extent = figure_size(layer.animation, cell)
            origin = QPointF(max((self.width() - extent.width()) / 2, 0),
                             max((self.height() - extent.height()) / 2, 0))
            paint_frame(painter, layer.animation, self.panel.frame_index, colors, cell, origin)
        painter.end()


class AnimationPanel(QWidget):
    """The selected layer's window animated on a small grid, with play/pause, step, speed and
    export. Call `set_layer(spec, in_shape)`; it shows a message for layers without a window.

    State tests read: `layer_animation` (None when nothing is animated), `frame_index`,
    `frame_count`, `playing`, `caption`, `message`, `timer`; `frameChanged(int)` fires on every
    frame change. `follow_theme()` redraws after a theme switch. `choose_gif_path()` / `choose_frames_path()` ask where to save ("" when
    cancelled) and `show_error(title, message)` reports a failed save; tests replace them.
    """
    frameChanged = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.layer_animation: LayerAnimation | None = None
        self.frame_index = 0
        self.speed = 1.0
        self.timer = QTimer(self)
        self.timer.timeout.connect(lambda: self.step(1))

        self.caption = QLabel()
        self.caption.setWordWrap(True)
        self.caption.setTextFormat(Qt.TextFormat.RichText)
        self.message = mute(QLabel("Select a convolution or pooling layer to watch its window."))
        self.message.setWordWrap(True)
        self.canvas = _Canvas(self)

        self.play_button = QToolButton()
        self.play_button.setText("Play")
        self.play_button.setCheckable(True)
        self.play_button.setToolTip("Play or pause the animation (it loops)")
        self.play_button.toggled.connect(self._play_toggled)
        self.back_button = QToolButton()
        self.back_button.setText("◀ Step")
        self.back_button.setToolTip("One output cell back")
        self.back_button.clicked.connect(lambda: self.step(-1))
        self.next_button = QToolButton()
        self.next_button.setText("Step ▶")
        self.next_button.setToolTip("One output cell on")
        self.next_button.clicked.connect(lambda: self.step(1))
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setToolTip("Which output cell is being written")
        self.slider.valueChanged.connect(self.set_frame)
        self.speed_box = QComboBox()
        for factor in SPEEDS:
            self.speed_box.addItem(f"{factor:g}×", factor)
        self.speed_box.setCurrentIndex(SPEEDS.index(1.0))
        self.speed_box.setToolTip("Playback speed")
        self.speed_box.currentIndexChanged.connect(
            lambda i: self.set_speed(float(self.speed_box.itemData(i))))
        self.gif_button = QPushButton("Save GIF...")
        self.gif_button.setToolTip("Save the whole animation as a looping GIF")
        self.gif_button.clicked.connect(self.save_gif_dialog)
        self.frames_button = QPushButton("Save PNG frames...")
        self.frames_button.setToolTip("Save every frame as a numbered PNG file")
        self.frames_button.clicked.connect(self.save_frames_dialog)

        controls = QHBoxLayout()
        for widget in (self.play_button, self.back_button, self.next_button):
            controls.addWidget(widget)
        controls.addWidget(self.slider, 1)
        controls.addWidget(QLabel("Speed"))
        controls.addWidget(self.speed_box)
        controls.addWidget(self.gif_button)
        controls.addWidget(self.frames_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.caption)
        layout.addWidget(self.message)
        layout.addWidget(self.canvas, 1)
        layout.addLayout(controls)
        self._show_state()

    @property
    def frame_count(self) -> int:
        return self.layer_animation.animation.frame_count if self.layer_animation else 0

    @property
    def playing(self) -> bool:
        return self.timer.isActive()

    def set_layer(self, spec: LayerSpec | None, in_shape: Shape | None) -> None:
        """Animate `spec` on an input of shape (C, *spatial) (no batch axis), from frame 0.

        Layers without a sliding window, or whose settings cannot work, show a message
        instead. Playback keeps going if it was on.
        """
        self.layer_animation = None
        if spec is None or in_shape is None:
            self.message.setText("Select a convolution or pooling layer to watch its window.")
        else:
            try:
                self.layer_animation = animate_layer(spec, in_shape)
            except ConfigError as err:
                self.message.setText(f"{spec.type_name} cannot run: {err.reason}")
            except ValueError as err:
                self.message.setText(f"{err}. Select a convolution or pooling layer.")
        self.frame_index = 0
        self._show_state()

    def set_frame(self, index: int) -> None:
        """Show frame `index`, clamped to the frames there are."""
        index = min(max(int(index), 0), max(self.frame_count - 1, 0))
        if index == self.frame_index:
            return
        self.frame_index = index
        self.slider.setValue(index)
        self.canvas.update()
        self.frameChanged.emit(index)

    def step(self, delta: int = 1) -> None:
        """Move `delta` frames, wrapping around at either end."""
        if self.frame_count:
            self.set_frame((self.frame_index + delta) % self.frame_count)

    def play(self) -> None:
        self.play_button.setChecked(True)

    def pause(self) -> None:
        self.play_button.setChecked(False)

    def set_speed(self, factor: float) -> None:
        """Play at `factor` times FRAME_MS per frame."""
        self.speed = factor
        self.timer.setInterval(round(FRAME_MS / factor))

    def _play_toggled(self, on: bool) -> None:
        self.play_button.setText("Pause" if on else "Play")
        if on and self.frame_count:
            self.timer.start(round(FRAME_MS / self.speed))
        else:
            self.timer.stop()

    def follow_theme(self) -> None:
        """Redraw in the figure colours of the theme now applied."""
        self.canvas.update()

    def _show_state(self) -> None:
        layer = self.layer_animation
        has = layer is not None
        self.caption.setVisible(has)
        self.message.setVisible(not has)
        for widget in (self.play_button, self.back_button, self.next_button, self.slider,
                       self.gif_button, self.frames_button):
            widget.setEnabled(has)
        if layer is not None:
            self.caption.setText(caption_text(layer))
        else:
            self.pause()
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(self.frame_count - 1, 0))
        self.slider.setValue(self.frame_index)
        self.slider.blockSignals(False)
        self.canvas.update()
        self.frameChanged.emit(self.frame_index)

    # ---- saving -------------------------------------------------------------------------------
    def choose_gif_path(self) -> str:
        """Where to save the GIF, or "" when cancelled (tests replace this)."""
        return QFileDialog.getSaveFileName(self, "Save animation as GIF", "convolution.gif",
                                           "GIF images (*.gif)")[0]

    def choose_frames_path(self) -> str:
        """The base name of the PNG frames (name.png -> name-001.png, ...), or "" when cancelled
        (tests replace this)."""
        return QFileDialog.getSaveFileName(self, "Save animation frames as PNG", "convolution.png",
                                           "PNG images (*.png)")[0]

    def show_error(self, title: str, message: str) -> None:
        QMessageBox.warning(self, title, message)

    def save_gif_dialog(self) -> Path | None:
        """Ask for a path and write the GIF there; the path written, or None."""
        path = self.choose_gif_path()
        if not path or self.layer_animation is None:
            return None
        target = Path(path if path.lower().endswith(".gif") else path + ".gif")
        try:
            save_gif(self.layer_animation.animation, target)
        except OSError as err:
            self.show_error("Cannot save", f"cannot write {target.name}: {err.strerror or err}")
            return None
        return target

    def save_frames_dialog(self) -> list[Path]:
        """Ask for a base path and write the PNG frames; the paths written (empty on failure)."""
        path = self.choose_frames_path()
        if not path or self.layer_animation is None:
            return []
        target = Path(path if path.lower().endswith(".png") else path + ".png")
        try:
            return save_png_frames(self.layer_animation.animation, target)
        except OSError as err:
            self.show_error("Cannot save", f"cannot write {target.name} frames: "
                                           f"{err.strerror or err}")
            return []
