"""The backend never imports QGIS: every module imports with QGIS made unimportable."""
import subprocess
import sys

from helpers import ROOT

SCRIPT = r"""
import sys, pkgutil, importlib
for name in ("qgis", "qgis.core", "qgis.gui", "processing", "PyQt5"):
    sys.modules[name] = None  # any import of these now raises ImportError
import backend
mods = [m.name for m in pkgutil.walk_packages(backend.__path__, "backend.") if m.name != "backend.__main__"]
for m in mods:
    importlib.import_module(m)
leaked = [m for m in sys.modules if m.split(".")[0] in ("qgis", "PyQt5", "processing") and sys.modules[m] is not None]
print(len(mods), "modules", "leaked:", leaked)
assert not leaked
"""


def test_backend_imports_without_qgis():
    proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    count = int(proc.stdout.split()[0])
    assert count >= 15  # every backend module was imported
    assert "leaked: []" in proc.stdout


def test_cli_help_without_qgis():
    proc = subprocess.run([sys.executable, "-c",
                           "import sys; sys.modules['qgis'] = None; from backend.cli import main; "
                           "main(['models'])"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "| `dganet` |" in proc.stdout and "| `bicubic` |" in proc.stdout
