"""``auto`` precision by measurement: time the real network's paths on this machine once, keep the fastest.

torch's bf16 flag (``mkldnn._is_mkldnn_bf16_supported``) answers True on any
AVX512 core. Where bf16 is emulated (AVX512 without AVX512-BF16 or AMX) it is
about 3x slower than fp32 (issue 33: an Intel Xeon ran dganet x4 at 0.31 Mpx/s
in bf16 against 0.90 in fp32), so a flag cannot choose. The first ``auto`` run
on a machine times each path on the engine's own network for a few seconds and
stores the answer in the user's cache folder, keyed by everything that changes
it: CPU model (or GPU name), threads, torch version and device. A cache that
cannot be read, or whose key differs, is measured again, never trusted.
"""
from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple

from .torch_support import torch

#: Environment variable naming the cache folder (the plugin points it into the QGIS profile).
CACHE_ENV = "SUPERRES_CACHE_DIR"
#: Bumped when what is measured changes, so older answers are measured again.
FORMAT = 1
#: The paths ``auto`` chooses between: (precision, channels-last layout).
PATHS: Tuple[Tuple[str, bool], ...] = (("fp32", False), ("fp32", True), ("bf16", True))
#: The network timed, at its most common scale, on an LR square of this side.
PROBE_MODEL, PROBE_SCALE, PROBE_SIDE = "dganet", 4, 96
#: Seconds of timed passes per path after one warm-up pass (at least one pass).
PROBE_SECONDS = 0.6


def path_name(precision: str, channels_last: bool) -> str:
    """How a path is written in the log and the cache: ``fp32``, ``fp32+cl`` or ``bf16``."""
    return precision + ("+cl" if channels_last and precision == "fp32" else "")


@dataclass(frozen=True)
class Calibration:
    """What was measured on one machine and what ``auto`` uses there.

    Attributes:
        precision: ``bf16`` or ``fp32``, the fastest measured.
        channels_last: whether the fastest path runs the network in channels-last layout.
        speeds: Mpx/s (output pixels) of each path measured, by ``path_name``.
        key: what the answer depends on (``calibration_key``).
        cached: read from the cache rather than measured in this process.
    """

    precision: str
    channels_last: bool
    speeds: Dict[str, float] = field(default_factory=dict)
    key: Dict[str, object] = field(default_factory=dict)
    cached: bool = False

    def describe(self) -> str:
        """``fp32 (measured: fp32 0.90, fp32+cl 0.95, bf16 0.31 Mpx/s)``, for the run log."""
        speeds = ", ".join(f"{k} {v:.2f}" for k, v in self.speeds.items())
        return f"{path_name(self.precision, self.channels_last)} (measured: {speeds} Mpx/s)"


def cache_dir() -> Path:
    """``$SUPERRES_CACHE_DIR``, else the user's cache folder (XDG) for this project."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "raster-super-resolution"


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), or what ``platform`` knows elsewhere."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def calibration_key(device: str, threads: int) -> Dict[str, object]:
    """Everything the fastest path depends on: a cache entry with another key is measured again."""
    name = torch.cuda.get_device_name(device) if device.startswith("cuda") else cpu_model()
    return {"format": FORMAT, "device": device.split(":")[0], "hardware": name,
            "threads": int(threads), "torch": str(torch.__version__)}


def _cache_file(device: str) -> Path:
    return cache_dir() / f"calibration-{device.split(':')[0]}.json"


def load(device: str, key: Dict[str, object]) -> Optional[Calibration]:
    """The cached answer for ``key``, or None when absent, unreadable, malformed or for another key."""
    try:
        data = json.loads(_cache_file(device).read_text(encoding="utf-8"))
        if data.get("key") != key:
            return None
        precision, channels_last = data["precision"], data["channels_last"]
        speeds = {str(k): float(v) for k, v in data["speeds"].items()}
        if (precision, channels_last) not in PATHS or not speeds or min(speeds.values()) <= 0:
            return None
        if path_name(precision, channels_last) not in speeds:
            return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return Calibration(precision, bool(channels_last), speeds, key, cached=True)


def save(device: str, calibration: Calibration) -> None:
    """Store ``calibration`` atomically; a cache that cannot be written only costs a new measure next time."""
    target = _cache_file(device)
    data = {"key": calibration.key, "precision": calibration.precision,
            "channels_last": calibration.channels_last, "speeds": calibration.speeds}
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".calibration-", dir=str(target.parent))
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1)
        os.replace(tmp, target)
    except OSError:
        pass


def candidates(device: str):
    """The paths worth timing on ``device``: bf16 only where it can run at all."""
    if device.startswith("cuda") and not torch.cuda.is_bf16_supported():
        return [p for p in PATHS if p[0] == "fp32"]
    return list(PATHS)


def measure(device: str, paths, seconds: float = PROBE_SECONDS) -> Dict[str, float]:
    """Output Mpx/s of the probe network on ``device`` for each (precision, channels_last) path.

    Weights do not change the speed, so the network is built untrained (no
    file is read). A path already twice as slow as the best on its warm-up
    pass is not timed further: emulated bf16 must not make the probe long.
    """
    from .registry import get_model
    net = get_model(PROBE_MODEL).build(3, PROBE_SCALE).eval().to(device)
    x = torch.rand(1, 3, PROBE_SIDE, PROBE_SIDE, device=device)
    out_px = PROBE_SIDE * PROBE_SIDE * PROBE_SCALE ** 2
    speeds: Dict[str, float] = {}
    for precision, channels_last in paths:
        layout = torch.channels_last if channels_last else torch.contiguous_format
        net = net.to(memory_format=layout)
        xi = x.contiguous(memory_format=layout)

        def once():
            start = time.perf_counter()
            with torch.inference_mode(), torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16,
                                                         enabled=precision == "bf16"):
                net(xi)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            return time.perf_counter() - start

        warm = once()
        best = max(speeds.values(), default=0.0)
        times = [warm]
        if not best or out_px / warm / 1e6 > best / 2:
            times, spent = [], 0.0
            while spent < seconds or not times:
                times.append(once())
                spent += times[-1]
        speeds[path_name(precision, channels_last)] = out_px / min(times) / 1e6
    return speeds


def choose(speeds: Dict[str, float]) -> Tuple[str, bool]:
    """The fastest path in ``speeds`` (ties go to fp32, which is exact)."""
    order = {path_name(*p): i for i, p in enumerate(PATHS)}
    name = max(speeds, key=lambda k: (speeds[k], -order[k]))
    return next(p for p in PATHS if path_name(*p) == name)


def calibrate(device: str, threads: Optional[int] = None,
              measure_fn: Callable[[str, list], Dict[str, float]] = None) -> Calibration:
    """The fastest path on ``device``: from the cache when its key matches, else measured and cached."""
    if threads is None:
        threads = torch.get_num_threads() if not device.startswith("cuda") else 0
    key = calibration_key(device, threads)
    cached = load(device, key)
    if cached is not None:
        return cached
    speeds = (measure_fn or measure)(device, candidates(device))
    precision, channels_last = choose(speeds)
    result = Calibration(precision, channels_last, speeds, key)
    save(device, result)
    return result
