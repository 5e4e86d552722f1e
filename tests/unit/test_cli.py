"""The backend command line: same pixels as the library, clear one-line errors."""
import contextlib
import io
import re
import subprocess
import sys
import time

import numpy as np
import pytest
from osgeo import gdal

from backend.cli import main
from backend.evaluate import evaluate_file
from backend.job import SuperResolveJob, run_job
from helpers import AERIAL, COLLAR, DATA, LANDSAT, ROOT, assert_same_pixels, read


def cli(*args):
    return subprocess.run([sys.executable, "-m", "backend", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True)


def _map_extent(path, cols, rows):
    """An extent (xmin, ymin, xmax, ymax) from input-pixel columns and rows, and the geotransform."""
    x0, pw, _, y0, _, ph = gdal.Open(str(path)).GetGeoTransform()
    return (x0 + cols[0] * pw, y0 + rows[1] * ph, x0 + cols[1] * pw, y0 + rows[0] * ph), (x0, pw, y0, ph)


def test_superresolve_same_pixels_as_library(tmp_path):
    """--weights, --bands, --extent, --tile and --mask reach the run: the library's pixels and mask."""
    ext, (x0, pw, y0, ph) = _map_extent(COLLAR, (10.5, 89.5), (10.5, 49.5))   # 80 x 40 px, half collar
    out = tmp_path / "cli.tif"
    start = time.perf_counter()
    proc = cli("superresolve", COLLAR, out, "--model", "dganet", "--scale", "2", "--ise", "1",
               "--weights", "aerial", "--bands", "3,1", "--extent", ",".join(map(str, ext)),
               "--tile", "40", "--mask")
    wall = time.perf_counter() - start
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert any("weights 'aerial'" in line.lower() and "as asked" in line for line in lines)
    assert "Input window: x 10, y 10, 80 x 40 px; bands [3, 1]" in lines
    assert any(line.startswith("Tiles: 2 of up to 40 px with a ") for line in lines)
    assert "Output: 160 x 80 px, pixel size 15 x 15" in lines
    elapsed = [float(line.split()[1]) for line in lines if line.startswith("Elapsed: ")]
    assert len(elapsed) == 1 and 0 < elapsed[0] < wall
    assert any("zeros line the raster's edge" in line for line in lines)   # the collar, auto
    lib = tmp_path / "lib.tif"
    run_job(SuperResolveJob(str(COLLAR), str(lib), "dganet", 2, 1, extent=ext, bands=[3, 1], tile_size=40,
                            write_mask=True, weights="aerial"))
    np.testing.assert_array_equal(read(out), read(lib))
    a, b = gdal.Open(str(out)), gdal.Open(str(lib))
    assert a.GetGeoTransform() == pytest.approx((x0 + 10 * pw, pw / 2, 0, y0 + 10 * ph, 0, ph / 2), abs=1e-6)
    mask = a.GetRasterBand(1).GetMaskBand().ReadAsArray()
    assert a.GetRasterBand(1).GetMaskFlags() == gdal.GMF_PER_DATASET
    np.testing.assert_array_equal(mask, b.GetRasterBand(1).GetMaskBand().ReadAsArray())
    assert set(np.unique(mask)) == {0, 255}   # the collar is masked
    assert a.GetRasterBand(1).GetNoDataValue() == 0


def test_extent_pins_the_window_and_no_zero_collar(tmp_path):
    """--extent: the snapped window and the whole-layer run's pixels there; --no-zero-collar: zeros are data."""
    ext, (x0, pw, y0, ph) = _map_extent(COLLAR, (30.2, 71.9), (7.6, 40.0))   # snaps to x 30, y 7, 42 x 33
    out = tmp_path / "cli.tif"
    proc = cli("superresolve", COLLAR, out, "--model", "bicubic", "--scale", "2", "--no-zero-collar",
               "--extent", ",".join(map(str, ext)))
    assert proc.returncode == 0, proc.stderr
    assert "zeros line" not in proc.stdout
    ds = gdal.Open(str(out))
    gt = ds.GetGeoTransform()
    assert gt[0] == pytest.approx(x0 + 30 * pw, abs=1e-3 * pw) and gt[3] == pytest.approx(y0 + 7 * ph, abs=1e-3 * pw)
    assert (ds.RasterXSize, ds.RasterYSize) == (84, 66)
    assert ds.GetRasterBand(1).GetNoDataValue() is None
    full = tmp_path / "full.tif"
    run_job(SuperResolveJob(str(COLLAR), str(full), "bicubic", 2, zero_collar="off"))
    assert_same_pixels(read(out), read(full)[:, 14:80, 60:144])


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
    assert proc.returncode == 2 and "already exists" in proc.stderr and "--overwrite" in proc.stderr
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
    # argparse's wording is Python's (3.14 quotes the choices: '3', '2', '4', '8'; 3.11 does not);
    # the CLI's own part is the one line, "Error: " and the pointer to --help
    q = "'?"
    for argv, pattern in (
            (["superresolve", "in.tif"], r"required: output"),
            (["superresolve", "a", "b", "--extent", "1,2"],
             r"argument --extent: extent is xmin,ymin,xmax,ymax in the input's CRS"),
            (["evaluate", "hr.tif", "--scale", "3"],
             rf"argument --scale: invalid choice: {q}3{q} \(choose from {q}2{q}, {q}4{q}, {q}8{q}\)"),
            (["nosuch"], r"invalid choice: 'nosuch'")):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2
        message = err.getvalue()
        assert message.startswith("Error: ") and re.search(pattern, message), message
        assert message.endswith(f" (see python -m backend{' ' + argv[0] if len(argv) > 1 else ''} --help)\n")
        assert len(message.strip().splitlines()) == 1, message


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


def test_evaluate_subcommand_reports_the_library_numbers():
    proc = cli("evaluate", LANDSAT, "--scale", "2", "--models", "bicubic,nearest", "--ise", "0,2",
               "--bands", "1", "--window", "0,0,96,64")
    assert proc.returncode == 0, proc.stderr
    table = [line.split("|")[1:-1] for line in proc.stdout.splitlines() if line.startswith("| ")][1:]
    rows = evaluate_file(str(LANDSAT), 2, ["bicubic", "nearest"], [0, 2], bands=[1], window=[0, 0, 96, 64])
    assert [(c[0].strip(), int(c[2])) for c in table] == [(r.model, r.ise) for r in rows] == \
        [("bicubic", 0), ("bicubic", 2), ("nearest", 0), ("nearest", 2)]
    for cells, r in zip(table, rows):
        assert float(cells[3]) == pytest.approx(r.psnr, abs=0.005)
        assert float(cells[5]) == pytest.approx(r.ssim, abs=5e-5)
        assert float(cells[7]) == pytest.approx(r.lr_consistency, abs=5e-4)
    # a real pair of the wrong scale: one line
    proc = cli("evaluate", LANDSAT, "--scale", "4", "--models", "bicubic", "--lr", DATA / "landsat_b2_60m_64.tif")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("Error: The LR raster's pixels must be exactly 4 times")
    assert len(proc.stderr.strip().splitlines()) == 1
