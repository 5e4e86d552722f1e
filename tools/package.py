"""`make package`: dist/raster_super_resolution.zip, the plugin as the QGIS plugin repository takes it.

The zip holds what a user's plugin folder needs (``qgis_profile.SHIPPED``)
without tests, tools, caches or the ablation arms' weights (the repository and
`make install` keep those). Its weights are stored as ``STORED_DTYPE``, half
the size of the float32 originals; tools/weights_precision.py measures what
that costs (under ``MAX_PSNR_COST_DB`` on every packaged file, the condition
for storing them so). The build fails if the zip is over ``MAX_ZIP_BYTES``
or lacks LICENSE, and warns about metadata the repository requires.

    python3 tools/package.py [--out ZIP]      (needs torch and safetensors: run it with .venv/bin/python)
"""
from __future__ import annotations

import argparse
import configparser
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import List

sys.path.insert(0, str(Path(__file__).resolve().parent))
from qgis_profile import PLUGIN_NAME, ROOT, SHIPPED  # noqa: E402

sys.path.insert(0, str(ROOT))
from backend.registry import MODELS, WEIGHTS_DIR  # noqa: E402

#: plugins.qgis.org's upload limit (QGIS-Django validator: PLUGIN_MAX_UPLOAD_SIZE, 25 MB).
MAX_ZIP_BYTES = 25_000_000
#: Largest PSNR change a stored dtype may cause on the committed crops.
MAX_PSNR_COST_DB = 0.01
#: How the zip stores its weights (measured: tools/weights_precision.py, README "Packaging").
STORED_DTYPE = "float16"
#: Metadata keys plugins.qgis.org refuses an upload without.
REPOSITORY_KEYS = ("name", "description", "version", "qgisMinimumVersion", "author", "email", "about",
                   "tracker", "repository")


def packaged_weights() -> List[Path]:
    """The weights files the zip carries: every network's, except the ablation arms'."""
    names = [m.name for m in MODELS if m.kind == "network" and not m.ablation]
    return sorted(p for p in WEIGHTS_DIR.glob("*.safetensors") if p.name.rsplit("_x", 1)[0] in names)


def left_out(path: Path) -> bool:
    """Files under SHIPPED folders that stay out of the zip."""
    if "__pycache__" in path.parts or path.suffix == ".pyc":
        return True
    return path.parent == WEIGHTS_DIR and path.name.split(".")[0] not in {p.stem for p in packaged_weights()}


def missing_repository_keys() -> List[str]:
    """Metadata the plugin repository requires and metadata.txt does not give."""
    meta = configparser.ConfigParser()
    meta.optionxform = str
    meta.read(ROOT / "metadata.txt")
    return [k for k in REPOSITORY_KEYS if not meta.get("general", k, fallback="").strip()]


def build(out: Path) -> Path:
    """Write the zip to ``out``; raise SystemExit with one message if it breaks a rule."""
    from backend.weights import convert_weights
    if not (ROOT / "LICENSE").is_file():
        raise SystemExit("No LICENSE: the plugin repository refuses a zip without one.")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name in SHIPPED:
            src = ROOT / name
            files = [src] if src.is_file() else sorted(p for p in src.rglob("*") if p.is_file()) if src.is_dir() else []
            for f in files:
                if left_out(f):
                    continue
                arc = f"{PLUGIN_NAME}/{f.relative_to(ROOT)}"
                if f.suffix == ".safetensors":
                    half = Path(tmp) / f.name
                    convert_weights(f, half, STORED_DTYPE)
                    z.write(half, arc)
                else:
                    z.write(f, arc)
    size = out.stat().st_size
    if size > MAX_ZIP_BYTES:
        out.unlink()
        raise SystemExit(f"The zip would be {size / 1e6:.1f} MB, over the plugin repository's "
                         f"{MAX_ZIP_BYTES / 1e6:.0f} MB limit.")
    return out


def main(argv=None) -> int:
    """Build the zip and report its size and what the repository still needs."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(ROOT / "dist" / f"{PLUGIN_NAME}.zip"))
    out = build(Path(p.parse_args(argv).out))
    print(f"Wrote {out} ({out.stat().st_size / 1e6:.1f} MB; weights stored as {STORED_DTYPE})")
    missing = missing_repository_keys()
    if missing:
        print(f"Note: plugins.qgis.org will refuse this upload until metadata.txt gives {', '.join(missing)} "
              "(real values; the URLs must be reachable).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
