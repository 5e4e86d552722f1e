"""`superres:evaluate` through processing.run: its table holds real numbers."""
import csv
import re

import processing
import pytest
from osgeo import gdal

from helpers import AERIAL


def test_evaluate_algorithm(tmp_path):
    res = processing.run("superres:evaluate", {
        "INPUT": str(AERIAL), "SCALE": "4", "MODELS": ["bicubic", "dganet", "gdalwarp-cubic"], "ISE_ITERATIONS": "0,2",
        "OUTPUT_HTML": str(tmp_path / "r.html"), "OUTPUT_CSV": str(tmp_path / "r.csv"),
        "OUTPUT_FOLDER": str(tmp_path / "sr")})
    rows = list(csv.DictReader(open(res["OUTPUT_CSV"])))
    assert [(r["model"], r["ise"]) for r in rows] == [("bicubic", "0"), ("bicubic", "2"),
                                                      ("dganet", "0"), ("dganet", "2"), ("gdalwarp-cubic", "0")]
    assert [r["weights"] for r in rows] == ["", "", "aerial", "aerial", ""]   # auto: 10 cm Byte
    for r in rows:
        assert 10 < float(r["psnr_db"]) < 50 and 0 < float(r["ssim"]) < 1 and float(r["sam_deg"]) > 0
    # ISE brings the result closer to the LR input, for the baseline and the network
    assert float(rows[1]["lr_consistency_pct"]) < 0.5 * float(rows[0]["lr_consistency_pct"])
    assert float(rows[3]["lr_consistency_pct"]) < 0.5 * float(rows[2]["lr_consistency_pct"])
    # the report's table holds the same rows and numbers, with the gain over bicubic ISE 0
    page = (tmp_path / "r.html").read_text()
    cells = [re.findall(r"<td>(.*?)</td>", tr) for tr in re.findall(r"<tr><td>.*?</tr>", page)]
    base = float(rows[0]["psnr_db"])
    assert len(cells) == len(rows)
    for c, r in zip(cells, rows):
        assert c[:3] == [r["model"], r["weights"] or "-", r["ise"]]
        assert float(c[3]) == pytest.approx(float(r["psnr_db"]), abs=0.005)
        assert float(c[4]) == pytest.approx(float(r["psnr_db"]) - base, abs=0.01)
        assert float(c[5]) == pytest.approx(float(r["ssim"]), abs=5e-5)
        assert float(c[9]) == pytest.approx(float(r["lr_consistency_pct"]), abs=5e-4)
    assert "Degradation: torch interpolate" in page and "LR consistency: RMSE between down(SR)" in page
    ds = gdal.Open(str(tmp_path / "sr" / "dganet_ise2_x4.tif"))
    assert (ds.RasterXSize, ds.RasterYSize) == (128, 128)
    assert ds.GetGeoTransform() == gdal.Open(str(AERIAL)).GetGeoTransform()
