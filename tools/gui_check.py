"""`make gui-check`: the plugin in a real QGIS window, clicked through as an analyst would.

Installs xvfb and xdotool if missing, starts Xvfb, makes a fresh HOME (a fresh
QGIS profile), runs `make install` into it, and starts `qgis` with
``tools/gui_session.py`` (``--code``), which opens the sample, runs Raster >
Raster Super-Resolution > Super-resolve layer… through its dialog (preview
included), waits for the task and saves screenshots to ``build/gui/``. Fails
unless the new layer is in the project. Not part of `make test`: it needs a
display server and a few minutes.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "build" / "gui"
SESSION = ROOT / "tools" / "gui_session.py"
TIMEOUT_S = 900


def ensure_packages() -> None:
    """Xvfb and xdotool from Debian's packages (root, or sudo)."""
    if shutil.which("Xvfb") and shutil.which("xdotool"):
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    print("Installing xvfb and xdotool...")
    subprocess.run([*sudo, "apt-get", "update", "-q"], check=True)
    subprocess.run([*sudo, "apt-get", "install", "-y", "-q", "xvfb", "xdotool"], check=True,
                   env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def free_display() -> int:
    """A display number no X server holds."""
    for n in range(90, 140):
        if not Path(f"/tmp/.X{n}-lock").exists() and not Path(f"/tmp/.X11-unix/X{n}").exists():
            return n
    raise SystemExit("no free X display number between :90 and :139")


def main() -> int:
    """Run the check; 0 when the result layer is in the project."""
    ensure_packages()
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    home = Path(tempfile.mkdtemp(prefix="superres-gui-home-"))
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "QGIS_PROFILE_DIR", "QGIS_CUSTOM_CONFIG_PATH", "QT_QPA_PLATFORM")}
    env["HOME"] = str(home)
    print(f"Fresh HOME {home}; make install into its default QGIS profile")
    make = os.environ.get("MAKE", "make")
    subprocess.run([make, "-o", "setup", "install", f"PY={sys.executable}"], cwd=ROOT, env=env, check=True)

    display = free_display()
    xvfb = subprocess.Popen(["Xvfb", f":{display}", "-screen", "0", "1680x1050x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if Path(f"/tmp/.X11-unix/X{display}").exists():
                break
            time.sleep(0.1)
        env.update(DISPLAY=f":{display}", SUPERRES_GUI_OUT=str(OUT), XDG_RUNTIME_DIR=str(home))
        print(f"Starting QGIS on :{display} (log: {OUT / 'qgis.log'})")
        with open(OUT / "qgis.log", "w") as log:
            qgis = subprocess.Popen(["qgis", "--nologo", "--code", str(SESSION)], env=env, cwd=home,
                                    stdout=log, stderr=subprocess.STDOUT)
            try:
                qgis.wait(TIMEOUT_S)
            except subprocess.TimeoutExpired:
                subprocess.run(["xdotool", "search", "--name", "QGIS"], env=env, capture_output=True)
                qgis.kill()
                qgis.wait()
                print(f"QGIS did not finish in {TIMEOUT_S} s", file=sys.stderr)
    finally:
        xvfb.terminate()
        xvfb.wait()
        shutil.rmtree(home, ignore_errors=True)
    return report()


def report() -> int:
    """Print what the session recorded; fail unless the new layer is in the project."""
    result_file = OUT / "result.json"
    if not result_file.is_file():
        print(f"No {result_file}: the session did not finish (see {OUT / 'qgis.log'}).", file=sys.stderr)
        return 1
    result = json.loads(result_file.read_text())
    for step in result.get("steps", []):
        print(f"  {step}")
    print("Layers in the project:", ", ".join(result.get("layers", [])))
    print("Screenshots:", ", ".join(sorted(p.name for p in OUT.glob("*.png"))))
    if result.get("error"):
        print(f"FAILED: an error in the session:\n{result['error']}", file=sys.stderr)
        return 1
    expected = result.get("expected_layer")
    if not expected or expected not in result.get("layers", []):
        print(f"FAILED: the layer '{expected}' is not in the project.", file=sys.stderr)
        return 1
    cancelled = result.get("cancelled_layer")
    if not cancelled or cancelled in result.get("layers", []):
        print(f"FAILED: the cancelled run still added '{cancelled}' (it finished before the cancel?).",
              file=sys.stderr)
        return 1
    print(f"OK: '{expected}' is in the project and the cancelled run left no layer; "
          f"look at {OUT.relative_to(ROOT)}/*.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
