"""The backend command line: same pixels as the library, clear one-line errors."""
import contextlib
import io
import subprocess
import sys

import numpy as np
import pytest

from backend.cli import main
from backend.job import SuperResolveJob, run_job
from helpers import AERIAL, LANDSAT, ROOT, read


def cli(*args):
    return subprocess.run([sys.executable, "-m", "backend", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True)


def test_superresolve_same_pixels_as_library(tmp_path):
    out = tmp_path / "cli.tif"
    proc = cli("superresolve", LANDSAT, out, "--model", "dganet", "--scale", "4", "--ise", "2",
               "--tile", "48", "--bands", "1,3")
    assert proc.returncode == 0, proc.stderr
    assert "Tiles: 9 of up to 48 px" in proc.stdout
    lib = tmp_path / "lib.tif"
    run_job(SuperResolveJob(str(LANDSAT), str(lib), "dganet", 4, 2, bands=[1, 3], tile_size=48))
    np.testing.assert_array_equal(read(out), read(lib))


def test_missing_input_is_one_clear_line(tmp_path):
    proc = cli("superresolve", tmp_path / "nope.tif", tmp_path / "o.tif", "--model", "bicubic")
    assert proc.returncode == 2
    assert proc.stderr.startswith("Error: Cannot open") and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_existing_output_needs_overwrite(tmp_path):
    out = tmp_path / "o.tif"
    out.write_bytes(b"keep me")
    proc = cli("superresolve", AERIAL, out, "--model", "bicubic", "--scale", "2")
    assert proc.returncode == 2 and "already exists" in proc.stderr
    assert out.read_bytes() == b"keep me"
    proc = cli("superresolve", AERIAL, out, "--model", "bicubic", "--scale", "2", "--overwrite")
    assert proc.returncode == 0 and read(out).shape == (3, 256, 256)


def test_output_equal_to_input_is_refused(tmp_path):
    src = tmp_path / "in.tif"
    src.write_bytes(AERIAL.read_bytes())
    proc = cli("superresolve", src, src, "--model", "bicubic", "--overwrite")
    assert proc.returncode == 2 and "OUTPUT is the input" in proc.stderr
    assert src.read_bytes() == AERIAL.read_bytes()


def test_model_choices_come_from_registry():
    from backend.registry import model_names
    proc = cli("superresolve", "a", "b", "--model", "nosuch")
    assert proc.returncode == 2 and proc.stdout == ""
    # one line, as the README promises, naming every registry model
    assert proc.stderr.startswith("Error: argument --model: invalid choice: 'nosuch'")
    assert len(proc.stderr.strip().splitlines()) == 1
    assert all(f"'{name}'" in proc.stderr for name in model_names())


def test_usage_errors_are_one_line():
    for argv, needle in ((["superresolve", "in.tif"], "required: output"),
                         (["superresolve", "a", "b", "--extent", "1,2"], "xmin,ymin,xmax,ymax"),
                         (["evaluate", "hr.tif", "--scale", "3"], "--scale: invalid choice: 3"),
                         (["nosuch"], "invalid choice: 'nosuch'")):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2
        assert err.getvalue().startswith("Error: ") and needle in err.getvalue()
        assert len(err.getvalue().strip().splitlines()) == 1, err.getvalue()


def test_ctrl_c_leaves_no_partial_output(tmp_path):
    import signal
    import time
    out = tmp_path / "o.tif"
    proc = subprocess.Popen([sys.executable, "-m", "backend", "superresolve", str(LANDSAT), str(out),
                             "--model", "bicubic", "--scale", "8", "--ise", "20", "--tile", "8"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            # A background job of a non-interactive shell (CI run with `&`)
                            # inherits SIGINT ignored; give the child the terminal's default.
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while not list(tmp_path.glob(".o.partial-*")) and time.time() < deadline:
        time.sleep(0.05)
    assert list(tmp_path.glob(".o.partial-*")), "the run never started writing"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "no output was written" in err
    assert list(tmp_path.iterdir()) == []
