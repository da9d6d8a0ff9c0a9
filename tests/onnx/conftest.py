"""Shared helpers of the ONNX tests live in helpers.py beside this file; pytest's importlib mode
does not put test folders on sys.path, so this conftest does."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
