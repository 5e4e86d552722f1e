"""The prepared GPU call's tools, run here on the CPU at small size.

A GPU session has one call of at most 10 minutes (README, "On a lent GPU
machine"); a tool that breaks there wastes it. These run the same code paths
on the CPU: ``tools/gpu_train.py`` continuing a shipped file inside its
minutes, and ``tools/gpu_bench.py`` saving each measurement as it comes.
"""
import hashlib
import importlib
import json
import sys

import numpy as np
import pytest
from safetensors import safe_open

from helpers import AERIAL, ROOT, read

sys.path.insert(0, str(ROOT / "tools"))


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_gpu_train_continues_the_shipped_file_and_ends_its_decay(tmp_path, monkeypatch):
    gpu_train = importlib.import_module("gpu_train")
    from backend.registry import get_model
    from backend.weights import read_metadata
    img = read(AERIAL)
    pack = tmp_path / "gpu_packed.npz"
    np.savez_compressed(pack, **{"aerial/osbs/train": img, "aerial/osbs/val": img})
    monkeypatch.setattr(gpu_train, "GPU_PACK", pack)
    shipped = get_model("dganet").weights_path(2, "aerial")
    before, done = _sha(shipped), int(read_metadata(shipped)["steps"])
    out = tmp_path / "out"
    out.mkdir()
    # a step count, not minutes: a slow CPU trains the same steps (4 new ones)
    gpu_train.train(["dganet:2:aerial"], 0.0, out, batch=2, steps=4)
    assert _sha(shipped) == before                                   # the shipped file is untouched
    # only the weights and their curve come back (a call returns at most 8 files)
    assert sorted(p.name for p in out.iterdir()) == [shipped.with_suffix(".log.csv").name, shipped.name]
    meta = read_metadata(out / shipped.name)
    steps = int(meta["steps"])
    assert steps == done + 4
    with safe_open(str(out / shipped.name), "pt") as f:
        rec = json.loads(f.metadata()["recipe"])
    # the new steps hold the rate for their first half, then decay to zero by the last
    assert rec["schedule"] == "cosine" and rec["decay_from"] == done + (steps - done) // 2
    assert rec["batch"] == 2
    curve = (out / shipped.with_suffix(".log.csv").name).read_text().splitlines()
    assert curve[-1].split(",")[0] == str(steps) and float(curve[-1].split(",")[-1]) == 0.0


def test_gpu_train_sizes_its_steps_from_the_minutes():
    gpu_train = importlib.import_module("gpu_train")
    assert gpu_train.steps_in(4.0, 0.5, "r") == 480
    # a budget shorter than one step is an error, never a run that trains nothing
    with pytest.raises(SystemExit, match="r: --minutes 0.01 is shorter than one training step here"):
        gpu_train.steps_in(0.01, 1.5, "r")


def test_gpu_bench_saves_each_measurement_as_it_comes(tmp_path, monkeypatch):
    gpu_bench = importlib.import_module("gpu_bench")
    argv = ["gpu_bench.py", "--size", "128", "--device", "cpu", "--adapt", "5", "--no-compile"]
    monkeypatch.setattr(sys, "argv", argv + ["--out", str(tmp_path / "full")])
    gpu_bench.main()
    report = json.loads((tmp_path / "full" / "gpu_bench.json").read_text())
    for key in ("dganet_x4_ise0", "dganet_x4_ise5", "bicubic_x4_ise0"):
        assert report[key]["mpx_s"] > 0 and report[key]["tiles"].startswith("Tiles:")
    assert report["bare_x4"]["fp32"] > 0 and report["pipeline_over_bare"] > 0
    assert report["adapt_x4"]["log"].startswith("Adaptation: 5 of 5 steps")
    assert report["adapt_x4"]["adapt_seconds"] > 0 and report["adapt_x4"]["input"] == [3, 128, 128]
    # A call cut short (here: the adaptation fails) keeps what was measured before it.

    def broken(*_a, **_k):
        raise RuntimeError("cut short")
    monkeypatch.setattr(gpu_bench, "adaptation", broken)
    monkeypatch.setattr(sys, "argv", argv + ["--out", str(tmp_path / "cut")])
    with pytest.raises(RuntimeError):
        gpu_bench.main()
    cut = json.loads((tmp_path / "cut" / "gpu_bench.json").read_text())
    assert "adapt_x4" not in cut and cut["dganet_x4_ise5"]["mpx_s"] > 0 and "pipeline_over_bare" in cut
