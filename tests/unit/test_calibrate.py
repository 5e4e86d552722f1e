"""``auto`` precision is chosen by measuring the real network, cached per machine, and never trusted stale."""
import json

import numpy as np
import pytest

import backend.calibrate as cal
from backend import engine as engine_mod
from backend.job import SuperResolveJob, run_job
from helpers import AERIAL, read

#: A CPU like issue 33's Xeon: AVX512 without native bf16 (measured speeds, Mpx/s).
EMULATED_BF16 = {"fp32": 0.90, "fp32+cl": 0.95, "bf16": 0.31}
#: A CPU with AVX512-BF16 or AMX.
NATIVE_BF16 = {"fp32": 0.68, "fp32+cl": 1.05, "bf16": 1.60}


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """Each test measures into its own cache folder, with no precision set in the environment."""
    monkeypatch.setenv(cal.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(engine_mod.PRECISION_ENV, raising=False)


def fake(speeds, calls=None):
    """A ``measure`` that returns ``speeds`` for the paths it is asked about, and counts its calls."""
    def measure(device, paths):
        if calls is not None:
            calls.append(device)
        return {cal.path_name(*p): speeds[cal.path_name(*p)] for p in paths}
    return measure


@pytest.mark.parametrize("speeds,want", [(EMULATED_BF16, ("fp32", True)), (NATIVE_BF16, ("bf16", True)),
                                         ({"fp32": 1.2, "fp32+cl": 0.8, "bf16": 0.5}, ("fp32", False))])
def test_auto_follows_the_timings(monkeypatch, speeds, want):
    monkeypatch.setattr(cal, "measure", fake(speeds))
    got = cal.calibrate("cpu")
    assert (got.precision, got.channels_last) == want
    assert engine_mod.resolve_path("auto", "cpu")[:2] == want


def test_the_run_log_names_the_measured_choice(monkeypatch, tmp_path):
    monkeypatch.setattr(cal, "measure", fake(EMULATED_BF16))
    log = []
    res = run_job(SuperResolveJob(str(AERIAL), str(tmp_path / "o.tif"), "dganet", 2), log=log.append)
    assert res.precision == "fp32"
    assert "Device: cpu, fp32+cl (measured: fp32 0.90, fp32+cl 0.95, bf16 0.31 Mpx/s)" in log


def test_the_measured_layout_gives_the_reference_pixels(monkeypatch):
    """fp32 in channels-last computes the same function: within float rounding of plain fp32."""
    from backend.job import super_resolve_array
    img = read(AERIAL)[:, :40, :40]
    ref = super_resolve_array(img, 2, "dganet", 1, device="cpu", precision="fp32").astype(float)
    monkeypatch.setattr(cal, "measure", fake(EMULATED_BF16))
    got = super_resolve_array(img, 2, "dganet", 1, device="cpu").astype(float)
    assert np.abs(got - ref).max() <= 1


def test_the_cache_is_reused_and_rekeyed(monkeypatch):
    calls = []
    monkeypatch.setattr(cal, "measure", fake(NATIVE_BF16, calls))
    first = cal.calibrate("cpu", threads=2)
    again = cal.calibrate("cpu", threads=2)
    assert len(calls) == 1 and again.cached and not first.cached
    assert (again.precision, again.speeds) == (first.precision, first.speeds)
    cal.calibrate("cpu", threads=1)                       # another thread count: measured again
    assert len(calls) == 2
    monkeypatch.setattr(cal, "cpu_model", lambda: "another CPU")
    cal.calibrate("cpu", threads=1)
    assert len(calls) == 3
    monkeypatch.setattr(cal.torch, "__version__", "9.9.9")
    cal.calibrate("cpu", threads=1)
    assert len(calls) == 4
    cal.calibrate("cpu", threads=1)
    assert len(calls) == 4


@pytest.mark.parametrize("damage", [
    lambda d: "not json {",
    lambda d: json.dumps({**d, "precision": "fp8"}),
    lambda d: json.dumps({**d, "speeds": {"fp32": -1.0}}),
    lambda d: json.dumps({**d, "speeds": {}}),
    lambda d: json.dumps({k: v for k, v in d.items() if k != "channels_last"}),
    lambda d: json.dumps([1, 2, 3]),
])
def test_a_corrupt_cache_is_measured_again(monkeypatch, damage):
    calls = []
    monkeypatch.setattr(cal, "measure", fake(NATIVE_BF16, calls))
    cal.calibrate("cpu", threads=2)
    path = cal._cache_file("cpu")
    path.write_text(damage(json.loads(path.read_text())))
    got = cal.calibrate("cpu", threads=2)
    assert len(calls) == 2 and not got.cached and got.precision == "bf16"


def test_an_explicit_precision_wins_and_measures_nothing(monkeypatch):
    def refuse(device, paths):
        raise AssertionError("measured although the precision was given")
    monkeypatch.setattr(cal, "measure", refuse)
    assert engine_mod.resolve_path("fp32", "cpu") == ("fp32", False, "fp32")
    monkeypatch.setenv(engine_mod.PRECISION_ENV, "fp32")
    assert engine_mod.resolve_path("auto", "cpu")[0] == "fp32"


def test_the_real_probe_times_every_path():
    """The probe runs the registry's network on this CPU in each layout and precision (a few seconds)."""
    speeds = cal.measure("cpu", cal.candidates("cpu"), seconds=0.05)
    assert set(speeds) == {"fp32", "fp32+cl", "bf16"} and min(speeds.values()) > 0
    assert cal.choose(speeds) in cal.PATHS


@pytest.mark.parametrize("flags,native", [
    ("fpu avx2 avx512f avx512bw avx512_vnni", False),         # an Ice Lake Xeon: oneDNN says True
    ("fpu avx2 avx512f avx512_bf16", True),                   # Zen 4, Cooper Lake
    ("fpu avx2 avx512f amx_bf16 amx_tile", True),             # Sapphire Rapids
    ("fpu sse4_2 avx2 fma", False),
])
def test_native_bf16_comes_from_the_cpu_flags(monkeypatch, flags, native):
    monkeypatch.setattr(engine_mod, "_cpu_flags", lambda: set(flags.split()))
    monkeypatch.setattr(engine_mod.platform, "machine", lambda: "x86_64")
    assert engine_mod.bf16_supported("cpu") is native


@pytest.mark.parametrize("speeds", [EMULATED_BF16, NATIVE_BF16, {"fp32": 1.2, "fp32+cl": 0.8, "bf16": 0.5}])
def test_dask_workers_get_the_path_chosen_here(monkeypatch, speeds):
    """A worker builds the client's path from its config and measures nothing (its own CPU could differ)."""
    from backend.engine import build_engine, engine_config, fixed_precision
    from backend.normalise import BandStats
    monkeypatch.setattr(cal, "measure", fake(speeds))
    stats = BandStats((0.0,) * 3, (255.0,) * 3)
    here = build_engine(engine_config("dganet", 2, stats, 3, True, "uint8"))

    def refuse(device, paths):
        raise AssertionError("a worker measured")
    monkeypatch.setattr(cal, "measure", refuse)
    monkeypatch.setenv(cal.CACHE_ENV, "/nonexistent/elsewhere")
    there = build_engine(engine_config("dganet", 2, stats, 3, True, "uint8", precision=fixed_precision(here)))
    assert (there.precision, there.channels_last) == (here.precision, here.channels_last)
