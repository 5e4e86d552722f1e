"""The backend command line: same pixels as the library, clear one-line errors."""
import subprocess
import sys

import numpy as np

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
    assert proc.stderr.startswith("Error: Input file") and "does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.splitlines()) == 1
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
    proc = cli("superresolve", "a", "b", "--model", "nosuch")
    assert proc.returncode == 2 and "dganet" in proc.stderr and "bicubic" in proc.stderr


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


def test_evaluate_writes_html_and_csv(tmp_path):
    import csv
    html, table = tmp_path / "r.html", tmp_path / "r.csv"
    proc = cli("evaluate", AERIAL, "--scale", "4", "--models", "bicubic,dganet", "--ise", "0,1",
               "--html", html, "--csv", table)
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(open(table)))
    assert [(r["model"], r["ise"], r["weights"]) for r in rows] == [
        ("bicubic", "0", ""), ("bicubic", "1", ""), ("dganet", "0", "aerial"), ("dganet", "1", "aerial")]
    # the CSV carries the numbers the printed table shows
    for r in rows:
        assert f"| {float(r['psnr_db']):.2f} |" in proc.stdout
    page = html.read_text()
    assert "x4 on osbs_rgb_128.tif" in page and "PSNR = 10 log10" in page
    assert page.count("<tr><td>") == 4


def test_evaluate_refuses_a_missing_report_folder_before_any_work(tmp_path):
    proc = cli("evaluate", AERIAL, "--models", "bicubic", "--csv", tmp_path / "no" / "r.csv")
    assert proc.returncode == 2 and proc.stderr.startswith("Error: --csv: the folder")
    assert "does not exist" in proc.stderr and "|" not in proc.stdout
