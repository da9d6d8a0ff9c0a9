"""Test setup for the engine tests.

Tests run with ``--import-mode=importlib``, which does not put the repository
root on ``sys.path``; the tests import ``engine.ops`` and the shared helper
``tests.engine.onnx_single_op`` from there.
"""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))
