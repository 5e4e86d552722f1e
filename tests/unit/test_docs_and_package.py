"""The README's model table comes from the registry; the package zip ships only the plugin."""
import configparser
import subprocess
import sys
import zipfile

from backend.registry import markdown_table
from backend.weights import read_metadata
from helpers import ROOT


def test_readme_model_table_is_generated():
    assert markdown_table() in (ROOT / "README.md").read_text()


def test_readme_quick_start_has_the_two_commands():
    text = (ROOT / "README.md").read_text()
    quick = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = [line.split("#")[0].strip() for line in quick.split("```sh", 1)[1].split("```", 1)[0].splitlines()]
    assert [c for c in commands if c] == ["make demo", "make test"]


def test_package_zip(tmp_path):
    out = tmp_path / "raster_super_resolution.zip"
    proc = subprocess.run([sys.executable, "tools/package.py", "--draft", "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_size <= 25_000_000          # plugins.qgis.org's upload limit
    z = zipfile.ZipFile(out)
    names = z.namelist()
    assert "raster_super_resolution/metadata.txt" in names
    assert "raster_super_resolution/LICENSE" in names
    assert "raster_super_resolution/backend/job.py" in names
    assert not [n for n in names if "/tests/" in n or "Makefile" in n or "__pycache__" in n
                or n.endswith(".pyc") or "/.venv/" in n or "/data/" in n or "/tools/" in n or "/." in n]
    assert "raster_super_resolution/backend/datasets.py" not in names     # `make data` only
    # the analyst's weights, half size; the ablation arms stay in the repository
    weights = sorted(n.rsplit("/", 1)[1] for n in names if n.endswith(".safetensors"))
    assert weights == sorted(p.name for p in (ROOT / "resources/weights").glob("*.safetensors")
                             if not p.name.startswith(("edsr_", "dganet_l2_", "dganet_sg_", "dganet_ga_")))
    assert "dganet_x4_aerial.safetensors" in weights and "dganet_large_x4_aerial.safetensors" in weights
    z.extract("raster_super_resolution/resources/weights/dganet_x4_aerial.safetensors", tmp_path)
    packed = tmp_path / "raster_super_resolution/resources/weights/dganet_x4_aerial.safetensors"
    meta = read_metadata(packed)
    assert meta["stored_dtype"] == "float16"
    assert meta["source_tensor_sha256"] == read_metadata(ROOT / "resources/weights/dganet_x4_aerial.safetensors")[
        "tensor_sha256"]
    # what plugins.qgis.org still needs, and the zip says it is not for upload
    assert "DRAFT, not for upload: plugins.qgis.org refuses it without email, tracker, repository, homepage" \
        in proc.stdout


def test_metadata_has_no_placeholders():
    from urllib.parse import urlparse
    meta = configparser.ConfigParser()
    meta.read(ROOT / "metadata.txt")
    general = meta["general"]
    assert set(general) >= {"name", "description", "about", "version", "qgisminimumversion", "author"}
    # optional for QGIS; when given, real: no reserved example domains, no empty values
    for key in ("repository", "tracker", "homepage"):
        if key in general:
            url = urlparse(general[key])
            assert url.scheme == "https" and url.netloc and not url.netloc.endswith((".invalid", "example.com",
                                                                                     "example.org"))
    if "email" in general:
        assert "@" in general["email"] and not general["email"].endswith((".invalid", "example.com"))
    assert "example.invalid" not in (ROOT / "metadata.txt").read_text()


def test_metadata_parses_as_qgis_and_the_plugin_repository_parse_it():
    """Both use ConfigParser with interpolation: a bare '%' anywhere fails the whole file there."""
    meta = configparser.ConfigParser()
    meta.optionxform = str
    meta.read(ROOT / "metadata.txt", encoding="utf-8")
    general = dict(meta.items("general"))        # interpolates every value
    assert general["qgisMinimumVersion"] == "3.22" and general["qgisMaximumVersion"] == "4.99"
    assert "about 40 per cent faster" in general["changelog"]


def test_license_is_gpl2_or_later():
    text = (ROOT / "LICENSE").read_text()
    assert "either version 2 of the License, or (at your option) any later" in text
    assert "GNU GENERAL PUBLIC LICENSE\n                       Version 2, June 1991" in text


def test_every_packaged_weight_set_has_crops_for_the_precision_check():
    """tools/weights_precision.py measures float16's cost on every file the zip carries."""
    sys.path.insert(0, str(ROOT / "tools"))
    from package import packaged_weights
    from weights_precision import CROPS, DATA
    sets = {p.stem.rsplit("_x", 1)[1].split("_", 1)[1] for p in packaged_weights()}   # <model>_x<scale>_<set>
    assert sets and sets <= set(CROPS), sets - set(CROPS)
    assert all((DATA / name).is_file() for crops in CROPS.values() for name, _ in crops)
