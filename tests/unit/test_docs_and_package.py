"""The README's model table comes from the registry; the package zip ships only the plugin."""
import subprocess
import sys
import zipfile

from backend.registry import markdown_table
from helpers import ROOT


def test_readme_model_table_is_generated():
    assert markdown_table() in (ROOT / "README.md").read_text()


def test_readme_quick_start_has_the_two_commands():
    text = (ROOT / "README.md").read_text()
    quick = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = [line.split("#")[0].strip() for line in quick.split("```sh", 1)[1].split("```", 1)[0].splitlines()]
    assert [c for c in commands if c] == ["make demo", "make test"]


def test_package_zip(tmp_path):
    proc = subprocess.run([sys.executable, "tools/package.py"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    names = zipfile.ZipFile(ROOT / "dist" / "raster_super_resolution.zip").namelist()
    assert "raster_super_resolution/metadata.txt" in names
    assert "raster_super_resolution/backend/job.py" in names
    assert any(n.endswith(".safetensors") for n in names)
    assert not [n for n in names if "/tests/" in n or "Makefile" in n or "__pycache__" in n
                or n.endswith(".pyc") or "/.venv/" in n or "/data/" in n]
