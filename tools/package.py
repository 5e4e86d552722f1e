"""`make package`: dist/raster_super_resolution.zip without tests, Makefile or caches."""
import sys
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from qgis_profile import PLUGIN_NAME, ROOT, SHIPPED  # noqa: E402

dist = ROOT / "dist"
dist.mkdir(exist_ok=True)
out = dist / f"{PLUGIN_NAME}.zip"
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
    for name in SHIPPED:
        src = ROOT / name
        files = [src] if src.is_file() else sorted(p for p in src.rglob("*") if p.is_file()) if src.is_dir() else []
        for f in files:
            if "__pycache__" in f.parts or f.suffix == ".pyc":
                continue
            z.write(f, f"{PLUGIN_NAME}/{f.relative_to(ROOT)}")
print(f"Wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")
