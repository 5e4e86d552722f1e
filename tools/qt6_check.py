"""The plugin under PyQt6 (QGIS 4), checked without QGIS 4: run it with build/qt6-venv's Python.

    build/qt6-venv/bin/python tools/qt6_check.py [--root DIR] [ui|names|flake8|all]

``ui``: every ui/*.ui loads through PyQt6's ``uic`` and ``setupUi`` runs on a
real widget; the QGIS widgets a form uses are stubbed by the Qt class their
``<extends>`` names.
``names``: every name the shipped Python imports from ``qgis.PyQt.*``, and
every ``Name.Member`` / ``Name.Enum.Member`` chain on such a name, exists in
PyQt6; Qt is imported only through ``qgis.PyQt``.
``flake8``: flake8-qgis's Qt6 rules (QGS4xx) and QGS107 (``exec_``) find
nothing in the shipped code.

With a QGIS 3 Python instead (``python3 tools/qt6_check.py qgis-enums``), the
``qgis.core`` / ``qgis.gui`` enum values the shipped code uses are checked to
be written scoped (``QgsTask.Flag.CanCancel``, not ``QgsTask.CanCancel``):
PyQt6 has only the scoped form, and QGIS's own aliases keep that form on 4.x.

Prints one line per problem and exits 1 if there is any; otherwise one "ok"
line per check.
"""
from __future__ import annotations

import ast
import importlib
import os
import subprocess
import sys
import types
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

ROOT = Path(__file__).resolve().parent.parent
#: flake8-qgis codes that concern Qt6: QGS4xx, and exec_ (QGS107).
FLAKE8_SELECT = "QGS107,QGS4"
#: Names QGIS's ``qgis.PyQt`` wrappers keep importable from their Qt5 module under PyQt6
#: (QAction/QShortcut: QGIS PR 55658, QActionGroup: PR 57467; kept for 4.x).
QGIS_PYQT6_ALIASES = {("QtWidgets", "QAction"): "QtGui", ("QtWidgets", "QShortcut"): "QtGui",
                      ("QtWidgets", "QActionGroup"): "QtGui"}
#: Modules that bypass ``qgis.PyQt``.
DIRECT_QT = ("PyQt5", "PyQt6", "sip", "PySide2", "PySide6")


def shipped_python(root: Path = ROOT) -> List[Path]:
    """The .py files the plugin zip ships (``SHIPPED`` in tools/qgis_profile.py)."""
    tree = ast.parse((root / "tools" / "qgis_profile.py").read_text())
    shipped = next(ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)
                   and any(isinstance(t, ast.Name) and t.id == "SHIPPED" for t in node.targets))
    files: List[Path] = []
    for name in shipped:
        path = root / name
        if path.is_dir():
            files += sorted(p for p in path.rglob("*.py") if "__pycache__" not in p.parts)
        elif path.suffix == ".py" and path.is_file():
            files.append(path)
    return files


# --- names ------------------------------------------------------------------------------

def imported_names(tree: ast.AST, packages: Tuple[str, ...]) -> Dict[str, Tuple[str, List[str]]]:
    """Local name -> (module under ``packages``, attribute path) for each ``from <package>... import``.

    ``from qgis.PyQt.QtCore import Qt`` gives ``{"Qt": ("QtCore", ["Qt"])}``;
    ``from qgis.PyQt import uic`` gives ``{"uic": ("uic", [])}``.
    """
    names: Dict[str, Tuple[str, List[str]]] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom) or not node.module or node.level:
            continue
        for package in packages:
            if node.module == package:
                for alias in node.names:
                    names[alias.asname or alias.name] = (alias.name, [])
            elif node.module.startswith(package + "."):
                module = node.module[len(package) + 1:]
                for alias in node.names:
                    names[alias.asname or alias.name] = (module, [alias.name])
    return names


def attribute_chains(tree: ast.AST) -> Iterator[Tuple[int, str, List[str]]]:
    """(line, root name, [attr, ...]) for each outermost ``name.a.b`` expression."""
    inner = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute) or id(node) in inner:
            continue
        attrs, value = [], node
        while isinstance(value, ast.Attribute):
            attrs.insert(0, value.attr)
            value = value.value
        if isinstance(value, ast.Name):
            yield node.lineno, value.id, attrs


def resolve(module: str, path: List[str], chain: List[str], base: str = "PyQt6") -> Optional[str]:
    """None if ``<base>.<module>.<path + chain>`` exists, else the part that does not."""
    if path and (module, path[0]) in QGIS_PYQT6_ALIASES:
        module = QGIS_PYQT6_ALIASES[(module, path[0])]
    try:
        obj = importlib.import_module(f"{base}.{module}")
    except ImportError:
        return f"{base}.{module}"
    done = [module]
    for attr in path + chain:
        if not hasattr(obj, attr):
            return ".".join(done + [attr])
        obj = getattr(obj, attr)
        done.append(attr)
    return None


def check_names(root: Path = ROOT) -> List[str]:
    """Problems with the Qt names the shipped code uses, as PyQt6 sees them."""
    problems = []
    for path in shipped_python(root):
        rel = path.relative_to(root)
        tree = ast.parse(path.read_text(), filename=str(rel))
        for node in ast.walk(tree):
            modules = ([a.name for a in node.names] if isinstance(node, ast.Import)
                       else [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level
                       else [])
            for module in modules:
                if module.split(".")[0] in DIRECT_QT:
                    problems.append(f"{rel}:{node.lineno}: imports {module}: import Qt through qgis.PyQt")
        names = imported_names(tree, ("qgis.PyQt",))
        for name, (module, path_) in names.items():
            missing = resolve(module, path_, [])
            if missing:
                problems.append(f"{rel}: imports {name} from qgis.PyQt.{module}: PyQt6 has no {missing}")
        for line, name, chain in attribute_chains(tree):
            if name in names:
                module, path_ = names[name]
                missing = resolve(module, path_, chain)
                if missing:
                    problems.append(f"{rel}:{line}: {'.'.join([name] + chain)}: PyQt6 has no {missing}")
    return problems


# --- ui -----------------------------------------------------------------------------------

def header_module(header: str) -> str:
    """The module PyQt's uic imports a custom widget from ("qgsfilewidget.h" -> "qgsfilewidget")."""
    return ".".join(p for p in header[:-2].split("/") if p not in ("", "."))


def stub_custom_widgets(ui_file: Path, qt_widgets, unchecked: List[str]) -> None:
    """Register a module per custom widget header, its class a subclass of the ``<extends>`` class.

    A setter Qt's class lacks (QGIS's own, e.g. ``setCollapsed``) is accepted and
    added to ``unchecked`` when called, since only QGIS has it.
    """
    for widget in ET.parse(ui_file).getroot().iter("customwidget"):
        name, extends = widget.findtext("class"), widget.findtext("extends") or "QWidget"
        base = getattr(qt_widgets, extends)

        def qgis_only(self, attr, _name=name):
            if attr.startswith("set"):
                unchecked.append(f"{_name}.{attr}")
                return lambda *args: None
            raise AttributeError(attr)
        module_name = header_module(widget.findtext("header"))
        module = sys.modules.get(module_name) or types.ModuleType(module_name)
        setattr(module, name, type(name, (base,), {"__getattr__": qgis_only}))
        sys.modules[module_name] = module


def check_ui(root: Path = ROOT) -> Tuple[List[str], List[str]]:
    """(problems, QGIS-only properties left unchecked) loading each ui/*.ui under PyQt6."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PyQt6 import QtWidgets, uic  # noqa: QGS103 (PyQt6 itself, without QGIS, is the point)
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    problems, unchecked = [], []
    files = sorted((root / "ui").glob("*.ui"))
    if not files:
        problems.append("no ui/*.ui files found")
    for ui_file in files:
        rel = ui_file.relative_to(root)
        stub_custom_widgets(ui_file, QtWidgets, unchecked)
        try:
            form, base = uic.loadUiType(str(ui_file))
            widget = base()
            form().setupUi(widget)
        except Exception as exc:  # any failure is the finding
            problems.append(f"{rel}: PyQt6 uic: {type(exc).__name__}: {' / '.join(str(exc).splitlines())}")
            continue
        names = {w.get("name") for w in ET.parse(ui_file).getroot().iter("widget")}
        missing = sorted(n for n in names if widget.findChild(QtWidgets.QWidget, n) is None
                         and widget.objectName() != n)
        if missing:
            problems.append(f"{rel}: setupUi made no widget named {', '.join(missing)}")
        widget.deleteLater()
    app.processEvents()
    return problems, sorted(set(unchecked))


# --- flake8-qgis --------------------------------------------------------------------------

def check_flake8(root: Path = ROOT) -> List[str]:
    """flake8-qgis's Qt6 findings in the shipped code (its own config files ignored)."""
    files = [str(p.relative_to(root)) for p in shipped_python(root)]
    proc = subprocess.run([sys.executable, "-m", "flake8", "--isolated", f"--select={FLAKE8_SELECT}"] + files,
                          cwd=root, capture_output=True, text=True)
    if proc.returncode not in (0, 1) or (proc.returncode == 1 and not proc.stdout.strip()):
        return [f"flake8 failed (exit {proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}"]
    return proc.stdout.strip().splitlines()


# --- QGIS enums (QGIS 3 Python) -----------------------------------------------------------

def is_enum_member(obj) -> bool:
    """Whether ``obj`` is a value of an enum: a sip enum (PyQt5) or a Python Enum (PyQt6)."""
    import enum
    # sip does not export its enum metaclass: match it by name
    return isinstance(obj, enum.Enum) or type(type(obj)).__name__ == "enumtype"


def check_qgis_enums(root: Path = ROOT) -> Tuple[List[str], List[str]]:
    """(enum values on qgis.core/qgis.gui classes written unscoped in the shipped code,
    names this QGIS lacks: newer API the code guards with ``hasattr``)."""
    problems, absent = [], []
    for path in shipped_python(root):
        rel = path.relative_to(root)
        tree = ast.parse(path.read_text(), filename=str(rel))
        names = imported_names(tree, ("qgis",))
        for line, name, chain in attribute_chains(tree):
            if name not in names or names[name][0] not in ("core", "gui"):
                continue
            module, path_ = names[name]
            obj = owner = None
            try:
                obj = importlib.import_module(f"qgis.{module}")
                for attr in path_ + chain:
                    owner, obj = obj, getattr(obj, attr)
            except AttributeError:
                absent.append(f"{rel}:{line} {'.'.join([name] + chain)}")
                continue
            if is_enum_member(obj) and owner is not type(obj):
                problems.append(f"{rel}:{line}: {'.'.join([name] + chain)} is unscoped: write "
                                f"{'.'.join([name] + chain[:-1] + [type(obj).__name__, chain[-1]])}")
    return problems, absent


def main(argv: List[str]) -> int:
    """Run the checks named in ``argv`` (default: all PyQt6 ones) on ``--root`` (default: this repository)."""
    root = ROOT
    if argv[:1] == ["--root"] and len(argv) > 1:
        root, argv = Path(argv[1]).resolve(), argv[2:]
    wanted = argv or ["all"]
    checks = ["ui", "names", "flake8"] if wanted == ["all"] else wanted
    failed = False
    for check in checks:
        if check == "ui":
            problems, unchecked = check_ui(root)
            note = f" (QGIS-only, not checked: {', '.join(unchecked)})" if unchecked else ""
        elif check == "names":
            problems, note = check_names(root), ""
        elif check == "flake8":
            problems, note = check_flake8(root), ""
        elif check == "qgis-enums":
            problems, absent = check_qgis_enums(root)
            note = f" (not in this QGIS, not checked: {', '.join(absent)})" if absent else ""
        else:
            print(f"unknown check {check!r}: use ui, names, flake8, qgis-enums or all", file=sys.stderr)
            return 2
        for problem in problems:
            print(problem)
        failed = failed or bool(problems)
        if not problems:
            print(f"ok: {check}{note}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
