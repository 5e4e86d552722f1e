"""Without PyTorch the baselines still work and networks fail with one clear message."""
import subprocess
import sys

from helpers import LANDSAT, ROOT

PRELUDE = "import sys; sys.modules['torch'] = None\n"


def run(code):
    return subprocess.run([sys.executable, "-c", PRELUDE + code], cwd=ROOT, capture_output=True, text=True)


def test_baseline_without_torch_matches_torch(tmp_path):
    out = tmp_path / "nt.tif"
    proc = run(f"from backend.job import SuperResolveJob, run_job\n"
               f"run_job(SuperResolveJob({str(LANDSAT)!r}, {str(out)!r}, 'bicubic', 4, 0))")
    assert proc.returncode == 0, proc.stderr
    from backend.job import SuperResolveJob, run_job
    from helpers import read
    ref = tmp_path / "t.tif"
    run_job(SuperResolveJob(str(LANDSAT), str(ref), "bicubic", 4, 0))
    diff = abs(read(out).astype(int) - read(ref).astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.001


def test_network_without_torch_names_the_fix(tmp_path):
    for model, ise in (("dganet", 0), ("bicubic", 3)):
        proc = subprocess.run([sys.executable, "-c", PRELUDE + "from backend.cli import main; sys.exit(main())",
                               "superresolve", str(LANDSAT), str(tmp_path / "o.tif"), "--model", model,
                               "--ise", str(ise)], cwd=ROOT, capture_output=True, text=True)
        assert proc.returncode == 2
        assert "needs PyTorch" in proc.stderr and "pip install torch" in proc.stderr
        # the command line's fix: the venv make setup builds, or the CPU build into another venv
        assert "`make setup`" in proc.stderr and "--extra-index-url https://download.pytorch.org/whl/cpu" in proc.stderr
        assert "Install PyTorch…" not in proc.stderr   # that is the QGIS menu
        assert "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []
