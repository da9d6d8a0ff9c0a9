"""gui.mosaic.lut_indices: handed to pyqtgraph instead of the float mosaic, the indices draw
exactly the pixels pyqtgraph draws from the float values under LEVELS."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QColor, QImage

from gui.feature_map_view import lookup_table
from gui.mosaic import GAP_VALUE, LEVELS, LUT_SIZE, lut_indices, tile
from gui.thumbnail_strip import colour_image


def rendered(image: np.ndarray, levels: tuple[float, float], lut: np.ndarray) -> np.ndarray:
    """The RGB pixels pyqtgraph's ImageItem makes of image (rows, columns, 4 bytes)."""
    item = pg.ImageItem(axisOrder="row-major")
    item.setLookupTable(lut)
    item.setImage(image, levels=levels, autoLevels=False)
    item.render()
    qimage = item.qimage.convertToFormat(QImage.Format.Format_RGB32)
    height, width = qimage.height(), qimage.width()
    return np.frombuffer(qimage.constBits(), np.uint8).reshape(height, width, 4).copy()


def test_indices_draw_the_pixels_of_the_values(qtbot):
    rng = np.random.default_rng(0)
    # Every step of the table and its edges: exact 0 and 1, values on and beside each
    # boundary k / 255, and the gaps of a real mosaic.
    steps = np.arange(LUT_SIZE, dtype=np.float64) / (LUT_SIZE - 1)
    values = np.concatenate([steps, np.nextafter(steps, -1), np.nextafter(steps, 2),
                             rng.random(4000)]).clip(0, 1).astype(np.float32)
    gaps = [GAP_VALUE] * (16 - values.size % 16 + 16)  # at least 16, and whole rows of 16
    image = np.concatenate([values, gaps]).astype(np.float32).reshape(-1, 16)
    mosaic = tile(rng.standard_normal((5, 9, 7)).astype(np.float32), shared=False)
    lut = lookup_table("viridis", QColor("black"))
    for floats in (image, mosaic.image):
        indices = lut_indices(floats)
        assert indices.dtype == np.uint8
        np.testing.assert_array_equal(rendered(indices, (0, LUT_SIZE - 1), lut),
                                      rendered(floats, LEVELS, lut))
    assert (lut_indices(mosaic.image)[mosaic.image == GAP_VALUE] == 0).all()  # the background
    assert mosaic.indices is mosaic.indices  # made once


def test_thumbnail_backgrounds_take_the_tables_background_entry(qtbot):
    lut = lookup_table("viridis", QColor("black"))
    image = np.array([[GAP_VALUE, 0.0, 1.0]], np.float32)
    qimage = colour_image(image, lut).convertToFormat(QImage.Format.Format_RGB888)
    pixels = np.frombuffer(qimage.constBits(), np.uint8)[:9].reshape(3, 3)
    np.testing.assert_array_equal(pixels, lut[[0, 1, LUT_SIZE - 1]])
