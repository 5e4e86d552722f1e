"""plugins.qgis.org's upload scan (QEP 408), run here on a plugin zip: Bandit, detect-secrets, flake8.

The commands, options and rule sets are the site's own: QGIS-Plugins-Website
at commit 73c20fa (2026-07-23), ``qgis-app/plugins/security_scanner.py`` with
the rules its ``populate_security_rules`` command enables
(``plugins/management/commands/data/{bandit,secrets,flake8}_rules.json``).
Any Bandit or detect-secrets finding blocks the version there; flake8 is
informational there, but this scan wants it clean too. The tools come pinned
(tools/scan-requirements.txt, the site's ``~=`` ranges resolved) from their
own venv, build/scan-venv, which `make scan-venv` creates.

    python3 tools/scan_zip.py ZIP        (exit 1 and one line per finding when any tool finds something)
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Dict, List

ROOT = Path(__file__).resolve().parent.parent
SCAN_VENV = ROOT / "build" / "scan-venv"
REQUIREMENTS = ROOT / "tools" / "scan-requirements.txt"
#: The tools whose pins are checked before a scan (their dependencies are pinned in the same file).
TOOLS = ("bandit", "detect-secrets", "flake8", "flake8-json")

#: Bandit tests the site enables (74 of the 78 it lists; B109, B404, B410 and B411 are off).
BANDIT_TESTS = (
    "B101", "B102", "B103", "B104", "B105", "B106", "B107", "B108", "B110", "B111", "B112", "B113",
    "B201", "B202", "B301", "B302", "B303", "B304", "B305", "B306", "B307", "B308", "B310", "B311",
    "B312", "B313", "B314", "B315", "B316", "B317", "B318", "B319", "B320", "B321", "B323", "B324",
    "B401", "B402", "B403", "B405", "B406", "B407", "B408", "B409", "B412", "B413", "B501", "B502",
    "B503", "B504", "B505", "B506", "B507", "B508", "B509", "B601", "B602", "B603", "B604", "B605",
    "B606", "B607", "B608", "B609", "B610", "B611", "B612", "B613", "B614", "B615", "B701", "B702",
    "B703", "B704")
#: detect-secrets plugins the site turns off; every other one runs.
SECRETS_DISABLED = ("IPPublicDetector",)
#: flake8 codes the site selects (26 of the 96 it lists; C901 reports nothing without --max-complexity).
FLAKE8_SELECT = (
    "C901", "E101", "E711", "E712", "E713", "E714", "E721", "E722", "E731", "E741", "E742", "E743",
    "E901", "E902", "E999", "F402", "F403", "F404", "F405", "F811", "F821", "F822", "F823", "F831",
    "F901", "W605")


def pinned_versions() -> Dict[str, str]:
    """The versions tools/scan-requirements.txt pins, by lower-case name."""
    pins = {}
    for line in REQUIREMENTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[name.strip().lower()] = version.strip()
    return pins


def check_venv() -> Path:
    """build/scan-venv's bin folder; SystemExit with one line if it is missing or not at the pins."""
    bin_dir = SCAN_VENV / "bin"
    if not all((bin_dir / tool).is_file() for tool in ("python", "bandit", "detect-secrets", "flake8")):
        raise SystemExit(f"{os.path.relpath(SCAN_VENV, ROOT)} is missing: run `make scan-venv` "
                         "(the pinned Bandit, detect-secrets and flake8 of the plugin repository's scan).")
    code = ("import importlib.metadata as m, json, sys; "
            "print(json.dumps({n: m.version(n) for n in sys.argv[1:]}))")
    try:
        found = json.loads(subprocess.run([str(bin_dir / "python"), "-c", code, *TOOLS], capture_output=True,
                                          text=True, check=True).stdout)
    except (subprocess.CalledProcessError, ValueError):
        raise SystemExit(f"{os.path.relpath(SCAN_VENV, ROOT)} lacks one of {', '.join(TOOLS)}: "
                         "run `make scan-venv`.") from None
    pins = pinned_versions()
    wrong = [f"{n} {v} (pinned {pins.get(n)})" for n, v in found.items() if v != pins.get(n)]
    if wrong:
        raise SystemExit(f"{os.path.relpath(SCAN_VENV, ROOT)} has {', '.join(wrong)}: run `make scan-venv`.")
    return bin_dir


def _json(proc: subprocess.CompletedProcess, tool: str):
    try:
        return json.loads(proc.stdout)
    except ValueError:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise SystemExit(f"{tool} did not run (exit {proc.returncode}): {tail[0]}") from None


def bandit(bin_dir: Path, tree: Path) -> List[str]:
    """Bandit as the site runs it when its rules are set: every severity of the enabled tests."""
    proc = subprocess.run([str(bin_dir / "bandit"), "-r", str(tree), "-f", "json", "--quiet",
                           "-t", ",".join(sorted(BANDIT_TESTS))], capture_output=True, text=True, cwd=tree)
    report = _json(proc, "bandit")
    found = [f"{Path(r['filename']).relative_to(tree)}:{r['line_number']}: {r['test_id']} {r['issue_text']}"
             for r in report.get("results", [])]
    # a file Bandit cannot parse is one the site cannot vouch for either
    return found + [f"{Path(e['filename']).relative_to(tree)}: bandit error: {e['reason']}"
                    for e in report.get("errors", [])]


def detect_secrets(bin_dir: Path, tree: Path) -> List[str]:
    """detect-secrets as the site runs it: every file, metadata.txt excluded, in the extracted tree."""
    cmd = [str(bin_dir / "detect-secrets"), "scan", "--all-files", "--exclude-files", r"metadata\.txt",
           "--exclude-files", r"\.secrets\.baseline"]
    for plugin in SECRETS_DISABLED:
        cmd += ["--disable-plugin", plugin]
    report = _json(subprocess.run(cmd + ["."], capture_output=True, text=True, cwd=tree), "detect-secrets")
    return [f"{path}:{s.get('line_number', 0)}: {s.get('type', 'secret')}"
            for path, secrets in sorted(report.get("results", {}).items())
            if not path.endswith((".pyc", ".pyo", ".so", ".dll", ".exe")) for s in secrets]


def flake8(bin_dir: Path, tree: Path) -> List[str]:
    """flake8 as the site runs it: 120 columns, its selected codes, every .py file."""
    files = sorted(str(p) for p in tree.rglob("*.py"))
    if not files:
        return []
    proc = subprocess.run([str(bin_dir / "flake8"), "--format=json", "--max-line-length=120",
                           "--select", ",".join(sorted(FLAKE8_SELECT)), *files],
                          capture_output=True, text=True, cwd=tree)
    report = _json(proc, "flake8") if proc.stdout.strip() else {}
    return [f"{Path(path).relative_to(tree)}:{i['line_number']}: {i['code']} {i['text']}"
            for path, issues in sorted(report.items()) for i in issues]


def scan(zip_path: Path) -> Dict[str, List[str]]:
    """Extract ``zip_path`` as the site does and run the three tools; findings by tool."""
    bin_dir = check_venv()
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp)
        with zipfile.ZipFile(zip_path) as z:
            z.extractall(tree)
        return {"bandit": bandit(bin_dir, tree), "detect-secrets": detect_secrets(bin_dir, tree),
                "flake8": flake8(bin_dir, tree)}


def main(argv=None) -> int:
    """Scan a zip; print a count per tool and each finding; exit 1 if anything is found."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("zip", type=Path)
    zip_path = p.parse_args(argv).zip
    if not zipfile.is_zipfile(zip_path):
        raise SystemExit(f"{zip_path}: not a zip file.")
    found = scan(zip_path)
    for tool, items in found.items():
        role = "informational on the site" if tool == "flake8" else "blocks the upload on the site"
        print(f"{tool}: {len(items)} finding(s) ({role})")
        for item in items:
            print(f"  {item}")
    return 1 if any(found.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
