"""Unit tests run without QGIS (-p no:qgis); the backend is imported from the repo root."""
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
# auto precision measures once per machine (backend/calibrate.py): once per test session
# here, in a folder of its own, not in the user's cache
os.environ.setdefault("SUPERRES_CACHE_DIR", tempfile.mkdtemp(prefix="superres-cache-"))
