"""QGIS 4 runs the plugin on PyQt6: the forms, the Qt names and the enums the code uses must exist there.

QGIS 4 cannot be installed here, so PyQt6 from PyPI stands in for it, in its
own environment (build/qt6-venv, made by `make test` from
tools/qt6-requirements.txt) so that nothing of it reaches .venv:
tools/qt6_check.py runs under that Python. The QGIS enums are checked with
this QGIS: each must be written scoped, the only form PyQt6 has.
"""
import json
import os
import subprocess
import sys
import textwrap

import pytest

from helpers import ROOT

QT6_VENV = ROOT / "build" / "qt6-venv"
QT6_PYTHON = QT6_VENV / "bin" / "python"
REQUIREMENTS = ROOT / "tools" / "qt6-requirements.txt"
CHECK = ROOT / "tools" / "qt6_check.py"


def qt6_python() -> str:
    """build/qt6-venv's Python; the test fails in one line if that venv is missing."""
    if not QT6_PYTHON.exists():
        pytest.fail(f"{QT6_VENV.relative_to(ROOT)} is missing: run `make test`, which creates it "
                    f"from {REQUIREMENTS.relative_to(ROOT)}.", pytrace=False)
    return str(QT6_PYTHON)


def run_qt6(*args: str) -> subprocess.CompletedProcess:
    """tools/qt6_check.py under build/qt6-venv's Python."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}   # PyQt6 only, never QGIS's PyQt5
    env["QT_QPA_PLATFORM"] = "offscreen"
    return subprocess.run([qt6_python(), str(CHECK), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def assert_ok(proc: subprocess.CompletedProcess, check: str) -> None:
    """The check ran clean; else its findings are the failure message."""
    assert proc.returncode == 0 and f"ok: {check}" in proc.stdout, proc.stdout + proc.stderr


def test_qt6_venv_has_the_pinned_versions():
    pins = dict(line.split("==") for line in REQUIREMENTS.read_text().splitlines()
                if line.strip() and not line.startswith("#"))
    code = ("import importlib.metadata as m, json, sys; "
            "print(json.dumps({n: m.version(n) for n in sys.argv[1:]}))")
    proc = subprocess.run([qt6_python(), "-c", code, *pins], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    installed = json.loads(proc.stdout)
    stale = {n: (installed[n], v) for n, v in pins.items() if installed[n] != v}
    assert not stale, f"build/qt6-venv differs from {REQUIREMENTS.name} (installed, pinned): {stale}; run `make test`"


def test_every_ui_file_loads_and_sets_up_under_pyqt6():
    proc = run_qt6("ui")
    assert_ok(proc, "ui")


def test_every_qt_name_the_plugin_uses_exists_in_pyqt6():
    proc = run_qt6("names")
    assert_ok(proc, "names")


def test_flake8_qgis_finds_no_qt6_problem():
    proc = run_qt6("flake8")
    assert_ok(proc, "flake8")


def test_qgis_enums_are_written_scoped():
    proc = subprocess.run([sys.executable, str(CHECK), "qgis-enums"], cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ, QT_QPA_PLATFORM="offscreen"), timeout=300)
    if "No module named 'qgis'" in proc.stderr:
        pytest.skip("QGIS's Python bindings are not importable here")
    assert_ok(proc, "qgis-enums")


# --- the checks themselves find what they are for --------------------------------------------

BAD_PY = """\
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtWidgets import QAction, QDialog
from PyQt5.QtCore import QTimer

state = Qt.Checked
fine = Qt.CheckState.Checked
QDialog().exec_()
"""
BAD_UI = """\
<?xml version="1.0" encoding="UTF-8"?>
<ui version="4.0">
 <class>Bad</class>
 <widget class="QDialog" name="Bad">
  <layout class="QVBoxLayout" name="root">
   <item><widget class="QgsFileWidget" name="file_widget"/></item>
   <item><spacer name="spacer"><property name="orientation"><enum>Qt::Vertical</enum></property></spacer></item>
  </layout>
 </widget>
 <customwidgets>
  <customwidget><class>QgsFileWidget</class><extends>QWidget</extends><header>qgsfilewidget.h</header></customwidget>
 </customwidgets>
</ui>
"""


@pytest.fixture
def bad_plugin(tmp_path):
    """A plugin tree with one of each Qt5-only habit the checks must catch."""
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "qgis_profile.py").write_text('SHIPPED = ("plugin", "ui")\n')
    (tmp_path / "plugin").mkdir()
    (tmp_path / "plugin" / "bad.py").write_text(BAD_PY)
    (tmp_path / "ui").mkdir()
    (tmp_path / "ui" / "bad.ui").write_text(BAD_UI)
    return tmp_path


def test_the_pyqt6_checks_catch_qt5_only_code(bad_plugin):
    proc = run_qt6("--root", str(bad_plugin), "all")
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    assert "plugin/bad.py:5: Qt.Checked: PyQt6 has no QtCore.Qt.Checked" in out
    assert "plugin/bad.py:3: imports PyQt5.QtCore: import Qt through qgis.PyQt" in out
    assert "QGS107" in out and "QGS403" in out
    assert "ui/bad.ui: PyQt6 uic: TypeError" in out          # the spacer without a sizeHint
    assert "bad.py:6:" not in out and "QAction" not in out    # scoped, and QGIS keeps QAction in QtWidgets


def test_the_qgis_enum_check_catches_an_unscoped_enum(bad_plugin):
    (bad_plugin / "plugin" / "bad.py").write_text(textwrap.dedent("""\
        from qgis.core import QgsTask
        flags = QgsTask.CanCancel
        fine = QgsTask.Flag.CanCancel
        """))
    proc = subprocess.run([sys.executable, str(CHECK), "--root", str(bad_plugin), "qgis-enums"], cwd=ROOT,
                          capture_output=True, text=True, env=dict(os.environ, QT_QPA_PLATFORM="offscreen"),
                          timeout=300)
    if "No module named 'qgis'" in proc.stderr:
        pytest.skip("QGIS's Python bindings are not importable here")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == [
        "plugin/bad.py:2: QgsTask.CanCancel is unscoped: write QgsTask.Flag.CanCancel"]
