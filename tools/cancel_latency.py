"""How long Cancel and Ctrl-C take to stop a run, per model, at the default (automatic) tiles.

A timer thread presses Cancel a few seconds into a real run on a 2048^2
aerial mosaic (``make bench``'s input), as a user would, and the script
measures the time from the press until ``run_job`` has stopped and removed
its partial output. It also reports the longest gap between two of the run's
cancellation questions, the worst case for a press at any moment. Then the
same for Ctrl-C on the command line (dganet).

    .venv/bin/python tools/cancel_latency.py [--models dganet,gpsr] [--after 4]
"""
from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))
from backend.errors import Cancelled  # noqa: E402
from backend.job import SuperResolveJob, run_job  # noqa: E402
from bench import OUT, aerial_input  # noqa: E402


def cancel_latency(src: Path, model: str, after: float, ise: int = 5) -> dict:
    """Press Cancel ``after`` seconds into a run; seconds until it stopped, and the longest gap between questions."""
    pressed = threading.Event()
    asked = []

    def is_cancelled():
        asked.append(time.perf_counter())
        return pressed.is_set()

    log = []
    job = SuperResolveJob(str(src), str(OUT / "cancel.tif"), model, 4, ise, overwrite=True)
    timer = threading.Timer(after, pressed.set)
    start = time.perf_counter()
    timer.start()
    press_time = None
    try:
        run_job(job, is_cancelled=is_cancelled, log=log.append)
        stopped = None
    except Cancelled as exc:
        stopped = time.perf_counter()
        press_time = start + after
        message = str(exc)
    finally:
        timer.cancel()
    gaps = [b - a for a, b in zip(asked, asked[1:])]
    tiles = next((line for line in log if line.startswith("Tiles:")), "")
    return {"model": model, "tiles": tiles, "latency_s": None if stopped is None else stopped - press_time,
            "longest_gap_s": max(gaps) if gaps else None, "questions": len(asked),
            "message": message if stopped else "finished before the press",
            "left": sorted(p.name for p in OUT.glob(".cancel*"))}


def ctrl_c_latency(src: Path, model: str = "dganet") -> float:
    """Seconds from SIGINT to the CLI's exit, sent once the run has started writing."""
    out = OUT / "ctrlc.tif"
    proc = subprocess.Popen([sys.executable, "-m", "backend", "superresolve", str(src), str(out), "--model", model,
                             "--scale", "4", "--ise", "5", "--overwrite"], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 300
    while not list(OUT.glob(".ctrlc.partial-*")) and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(2.0)   # into the first tile's network
    t = time.perf_counter()
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=600)
    return time.perf_counter() - t


def main() -> None:
    """Measure and print a markdown table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="dganet,dganet_large,gpsr,degan")
    p.add_argument("--after", type=float, default=4.0, help="seconds into the run before Cancel is pressed")
    args = p.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    src = aerial_input(2048)
    print("| model (x4, ISE 5, 2048^2 aerial) | tiles | Cancel -> stopped (s) | longest gap between checks (s) |")
    print("|---|---|---|---|")
    for model in args.models.split(","):
        r = cancel_latency(src, model, args.after)
        lat = "n/a" if r["latency_s"] is None else f"{r['latency_s']:.2f}"
        print(f"| {model} | {r['tiles'].removeprefix('Tiles: ')} | {lat} | {r['longest_gap_s']:.2f} |"
              + ("" if not r["left"] else f" left behind: {r['left']}"), flush=True)
    print(f"\nCtrl-C on `python -m backend superresolve` (dganet x4, ISE 5): {ctrl_c_latency(src):.2f} s to exit")


if __name__ == "__main__":
    main()
