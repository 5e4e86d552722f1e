"""`make package`: dist/raster_super_resolution.zip, the plugin as the QGIS plugin repository takes it.

The zip holds what a user's plugin folder needs (``qgis_profile.SHIPPED``)
without tests, tools, caches, hidden files, the modules only development uses
(``DEV_ONLY``) or the ablation arms' weights (the repository and `make install`
keep those). Its weights are stored as ``STORED_DTYPE``, half the size of the
float32 originals; tools/weights_precision.py measures what that costs (under
``MAX_PSNR_COST_DB`` on every packaged file, the condition for storing them so).
Every entry is a plain file, mode 644, whatever its mode in the working tree.

The publisher's ``email``, ``tracker``, ``repository`` and ``homepage``, which
plugins.qgis.org requires and QGIS does not, come from the command line
(`make package EMAIL=… TRACKER=… REPOSITORY=… HOMEPAGE=…`) and are written into
the zip's copy of metadata.txt (the site documents ``homepage`` as optional,
but its validator refuses an upload without one). Without them the build
stops, naming each one missing; ``--draft`` builds and checks everything else
and says the zip is not for upload. The finished zip is checked as the site's upload validator checks it
(QGIS-Plugins-Website, ``qgis-app/plugins/validator.py``): at most 25 MB, one
top folder named as a Python identifier, __init__.py, LICENSE, metadata.txt
parsed by ``ConfigParser`` exactly as the site parses it (interpolation on, so
a bare ``%`` fails), the required keys, URLs with a scheme and host. Stricter
than the site: no hidden, compiled, binary-executable or executable-mode
entries, and no packaged module imports one the zip leaves out. A zip that
fails is removed. The site's scan (Bandit, detect-secrets, flake8) is
tools/scan_zip.py; the site's check that the URLs answer needs the network
and is not made here.

    python3 tools/package.py --email ADDRESS --tracker URL --repository URL --homepage URL [--out ZIP]
    python3 tools/package.py --draft [--out ZIP]
    (needs torch and safetensors: run it with .venv/bin/python)
"""
from __future__ import annotations

import argparse
import ast
import codecs
import configparser
import io
import os
import re
import stat
import sys
import tempfile
import time
import zipfile
from pathlib import Path, PurePosixPath
from typing import Dict, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
from qgis_profile import PLUGIN_NAME, ROOT, SHIPPED  # noqa: E402

sys.path.insert(0, str(ROOT))
from backend.registry import MODELS, WEIGHTS_DIR  # noqa: E402

#: plugins.qgis.org's upload limit (validator.py: PLUGIN_MAX_UPLOAD_SIZE, 25 MB).
MAX_ZIP_BYTES = 25_000_000
#: Largest PSNR change a stored dtype may cause on the committed crops.
MAX_PSNR_COST_DB = 0.01
#: How the zip stores its weights (measured: tools/weights_precision.py, README "Packaging").
STORED_DTYPE = "float16"
#: Metadata keys plugins.qgis.org refuses an upload without (validator.py: PLUGIN_REQUIRED_METADATA).
REPOSITORY_KEYS = ("name", "description", "version", "qgisMinimumVersion", "author", "email", "about",
                   "tracker", "repository")
#: Documented as optional, yet the site's validator (at 73c20fa) refuses an upload without it:
#: it asks whether the missing URL answers, and requests fails on None.
SITE_ALSO_REQUIRES = ("homepage",)
#: The publisher's keys: given on the command line, written into the zip's metadata.txt.
PUBLISHER_KEYS = ("email", "tracker", "repository", "homepage")
#: Shipped-folder files only development uses: backend/datasets.py serves `make data` and tools/,
#: and its archive checksums read as secrets to detect-secrets, which blocks the upload.
DEV_ONLY = ("backend/datasets.py",)
#: Compiled or executable file types: the site refuses .pyc and its scan flags the others.
COMPILED_SUFFIXES = (".pyc", ".pyo", ".pyd", ".so", ".dylib", ".dll", ".exe", ".bat", ".cmd", ".sh", ".ps1")
#: Mode of every zip entry (a regular file, rw-r--r--).
ENTRY_MODE = stat.S_IFREG | 0o644
#: Host names reserved for examples, tests and local networks (RFC 2606, 6761, 6762): never a publisher's.
RESERVED_HOSTS = ("example.com", "example.org", "example.net")
RESERVED_SUFFIXES = (".invalid", ".test", ".example", ".localhost", ".local")


def packaged_weights() -> List[Path]:
    """The weights files the zip carries: every network's, except the ablation arms'."""
    names = [m.name for m in MODELS if m.kind == "network" and not m.ablation]
    return sorted(p for p in WEIGHTS_DIR.glob("*.safetensors") if p.name.rsplit("_x", 1)[0] in names)


def left_out(path: Path) -> bool:
    """Files under SHIPPED folders that stay out of the zip."""
    rel = path.relative_to(ROOT)
    if "__pycache__" in rel.parts or path.suffix == ".pyc" or any(p.startswith(".") for p in rel.parts):
        return True
    if rel.as_posix() in DEV_ONLY:
        return True
    return path.parent == WEIGHTS_DIR and path.name.split(".")[0] not in {p.stem for p in packaged_weights()}


def publisher_problems(values: Dict[str, str]) -> List[str]:
    """What is wrong with the given publisher values (absent ones are not checked here)."""
    problems = []
    for key, value in values.items():
        if not value:
            continue
        if any(c in value for c in "\r\n"):
            problems.append(f"{key} has a line break")
        elif key == "email":
            if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value):
                problems.append(f"email '{value}' is not an address")
            elif _reserved(value.rsplit("@", 1)[1]):
                problems.append(f"email '{value}' is a reserved example address, not the publisher's")
        else:
            url = _parse_url(value)
            if url is None or url.scheme not in ("http", "https"):
                problems.append(f"{key} '{value}' is not an http(s) URL with a host")
            elif "." not in (url.hostname or ""):
                problems.append(f"{key} '{value}' has no public host name (such as http://bugs)")
            elif _reserved(url.hostname):
                problems.append(f"{key} '{value}' is a reserved example host, not the publisher's")
    return problems


def _parse_url(value: str):
    """``value`` parsed, if it is a URL with a scheme and a host (what the site asks), else None."""
    from urllib.parse import urlparse
    try:
        url = urlparse(value)
    except ValueError:
        return None
    return url if url.scheme and url.netloc and not any(c.isspace() for c in value) else None


def _reserved(host: str) -> bool:
    host = host.lower().rstrip(".")
    return host in RESERVED_HOSTS or host == "localhost" or host.endswith(RESERVED_SUFFIXES) or \
        any(host.endswith("." + h) for h in RESERVED_HOSTS)


def with_publisher(text: str, values: Dict[str, str]) -> str:
    """metadata.txt's ``text`` with the given publisher keys added after ``author``.

    ``%`` is doubled, so that ConfigParser's interpolation, which the site and
    QGIS both use, gives back the value as written.
    """
    lines = [f"{k}={v.replace('%', '%%')}" for k, v in values.items() if v]
    if not lines:
        return text
    out, done = [], False
    for line in text.splitlines(keepends=True):
        out.append(line)
        if not done and re.match(r"author\s*[=:]", line):
            out += [entry + "\n" for entry in lines]
            done = True
    if not done:
        raise SystemExit("metadata.txt has no author line to put the publisher's keys after.")
    return "".join(out)


def _entry(name: str, mtime: float) -> zipfile.ZipInfo:
    """A zip entry for a plain file, mode ``ENTRY_MODE`` whatever the source's."""
    info = zipfile.ZipInfo(name, time.localtime(mtime)[:6])
    info.external_attr = ENTRY_MODE << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def build(out: Path, publisher: Optional[Dict[str, str]] = None, draft: bool = False) -> Path:
    """Write and check the zip at ``out``; raise SystemExit with one line if it breaks a rule.

    Nothing is left at ``out`` by a build that fails; a zip there from before stays as it was.
    """
    from backend.weights import convert_weights
    publisher = {k: v for k, v in (publisher or {}).items() if v}
    metadata = with_publisher((ROOT / "metadata.txt").read_text(encoding="utf-8"), publisher)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, partial_name = tempfile.mkstemp(prefix=f"{out.name}.", suffix=".partial", dir=out.parent)
    os.close(fd)
    partial = Path(partial_name)
    try:
        with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(partial, "w") as z:
            for name in SHIPPED:
                src = ROOT / name
                files = [src] if src.is_file() else sorted(p for p in src.rglob("*") if p.is_file()) \
                    if src.is_dir() else []
                for f in files:
                    if left_out(f):
                        continue
                    arc = f"{PLUGIN_NAME}/{f.relative_to(ROOT).as_posix()}"
                    if f.suffix == ".safetensors":
                        half = Path(tmp) / f.name
                        convert_weights(f, half, STORED_DTYPE)
                        data = half.read_bytes()
                    elif f.name == "metadata.txt" and f.parent == ROOT:
                        data = metadata.encode("utf-8")
                    else:
                        data = f.read_bytes()
                    z.writestr(_entry(arc, f.stat().st_mtime), data)
        problems = check_zip(partial, draft=draft, expect=publisher)
        if problems:
            raise SystemExit(f"The zip breaks plugins.qgis.org's rules, so none was written: {'; '.join(problems)}.")
        os.chmod(partial, 0o644)              # mkstemp's 0600 would hide the zip from other users
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    return out


def read_metadata(z: zipfile.ZipFile, name: str) -> Dict[str, str]:
    """``[general]`` of the zip's metadata.txt, parsed exactly as plugins.qgis.org parses it.

    ``ConfigParser`` with interpolation and case-kept keys; ``items`` interpolates
    every value, so a bare ``%`` raises here as it does on the site.
    """
    parser = configparser.ConfigParser()
    parser.optionxform = str
    parser.read_file(io.StringIO(codecs.decode(z.read(name), "utf8")))
    if not parser.has_section("general"):
        raise configparser.Error("no [general] section")
    return dict(parser.items("general"))


def check_zip(path: Path, draft: bool = False, expect: Optional[Dict[str, str]] = None) -> List[str]:
    """Everything in the zip at ``path`` that plugins.qgis.org refuses, or this project does: one line each.

    ``draft`` lets the publisher's keys be missing; ``expect`` are values its
    metadata must give back.
    """
    size = path.stat().st_size
    problems = [f"{size / 1e6:.1f} MB, over the {MAX_ZIP_BYTES / 1e6:.0f} MB limit"] if size > MAX_ZIP_BYTES else []
    try:
        z = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        return problems + ["not a zip file"]
    with z:
        names = z.namelist()
        if not names or "/" not in names[0]:
            return problems + ["no top folder holds the plugin"]
        bad = z.testzip()
        if bad:
            problems.append(f"{bad} fails its CRC check")
        package = names[0].split("/", 1)[0]
        tops = sorted({n.split("/", 1)[0] for n in names})
        if tops != [package]:
            problems.append(f"more than one top folder ({', '.join(tops)})")
        if not (package.isidentifier() and re.fullmatch(r"[A-Za-z][A-Za-z0-9_]+", package)):
            problems.append(f"top folder '{package}' is not a Python identifier starting with a letter")
        for info in z.infolist():
            problems += _entry_problems(info)
        for required in ("__init__.py", "metadata.txt", "LICENSE"):
            if f"{package}/{required}" not in names:
                problems.append(f"no {required} in {package}/")
        problems += _import_problems(z, package)
        if f"{package}/metadata.txt" in names:
            problems += _metadata_problems(z, package, draft, expect or {})
    return problems


def _entry_problems(info: zipfile.ZipInfo) -> List[str]:
    name = info.filename
    parts = PurePosixPath(name).parts
    mode = info.external_attr >> 16
    if ".." in parts or name.startswith("/") or "\\" in name or re.match(r"[A-Za-z]:", name):
        return [f"{name} has path information"]
    problems = []
    if any(p.startswith(".") or p in ("__MACOSX", "__pycache__") for p in parts):
        problems.append(f"{name} is hidden or a cache")
    if ".pyc" in name or name.lower().endswith(COMPILED_SUFFIXES):
        problems.append(f"{name} is compiled or executable")
    if mode and stat.S_ISLNK(mode):
        problems.append(f"{name} is a symbolic link")
    elif mode & 0o111 and not info.is_dir():
        problems.append(f"{name} has an executable mode ({stat.filemode(mode)})")
    return problems


def _import_problems(z: zipfile.ZipFile, package: str) -> List[str]:
    """Relative imports, in the zip's modules, of modules the working tree has and the zip leaves out."""
    names = set(z.namelist())
    problems = []
    for name in sorted(n for n in names if n.endswith(".py")):
        try:
            tree = ast.parse(z.read(name), name)
        except SyntaxError as e:
            problems.append(f"{name}:{e.lineno} does not parse")
            continue
        folder = PurePosixPath(name).parent
        for node in ast.walk(tree):
            if not (isinstance(node, ast.ImportFrom) and node.level):
                continue
            base = folder.parents[node.level - 2] if node.level > 1 else folder
            # ``from . import x``: x may be a module or a name the package defines
            targets = [node.module] if node.module else [a.name for a in node.names]
            for target in targets:
                stem = base.joinpath(*target.split("."))
                source = ROOT.joinpath(*stem.parts[1:])
                if f"{stem}.py" not in names and f"{stem}/__init__.py" not in names and \
                        (source.with_suffix(".py").is_file() or (source / "__init__.py").is_file()):
                    problems.append(f"{name}:{node.lineno} imports .{target}, which the zip leaves out")
    return problems


def _metadata_problems(z: zipfile.ZipFile, package: str, draft: bool, expect: Dict[str, str]) -> List[str]:
    try:
        meta = read_metadata(z, f"{package}/metadata.txt")
    except configparser.InterpolationSyntaxError as e:
        return [f"metadata.txt's {e.option} has a bare '%', which the site's ConfigParser refuses (write %%)"]
    except (configparser.Error, UnicodeDecodeError) as e:
        return [f"metadata.txt does not parse as the site parses it: {str(e).splitlines()[0]}"]
    meta = {k: v.strip() for k, v in meta.items()}
    problems = [f"metadata.txt lacks {k}" for k in REPOSITORY_KEYS + SITE_ALSO_REQUIRES
                if not meta.get(k) and not (draft and k in PUBLISHER_KEYS)]
    if "/" in meta.get("author", ""):
        problems.append("metadata.txt's author contains a slash")
    for key in ("tracker", "repository", "homepage"):
        if meta.get(key) and _parse_url(meta[key]) is None:
            problems.append(f"metadata.txt's {key} is not a URL with a scheme and host")
    problems += [f"metadata.txt's {k} reads back as '{meta.get(k)}', not '{v}'"
                 for k, v in expect.items() if meta.get(k) != v]
    icon = meta.get("icon", "").removeprefix("./")
    if icon and f"{package}/{icon}" not in z.namelist():
        problems.append(f"metadata.txt's icon {icon} is not in the zip")
    return problems


def main(argv=None) -> int:
    """Build and check the zip; report its size and whether it is for upload."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", help=f"default: dist/{PLUGIN_NAME}.zip (dist/{PLUGIN_NAME}_draft.zip with --draft)")
    p.add_argument("--email", default="", help="the publisher's address (metadata email)")
    p.add_argument("--tracker", default="", help="the issue tracker's URL (metadata tracker)")
    p.add_argument("--repository", default="", help="the code repository's URL (metadata repository)")
    p.add_argument("--homepage", default="", help="the plugin's home page (metadata homepage)")
    p.add_argument("--draft", action="store_true",
                   help="build and check without the publisher's keys; the zip is not for upload")
    args = p.parse_args(argv)
    given = {k: getattr(args, k).strip() for k in PUBLISHER_KEYS}
    problems = publisher_problems(given)
    if problems:
        raise SystemExit(f"Not packaged: {'; '.join(problems)}.")
    source = configparser.RawConfigParser()
    source.optionxform = str
    source.read(ROOT / "metadata.txt", encoding="utf-8")
    twice = [k for k in PUBLISHER_KEYS if given[k] and source.has_option("general", k)]
    if twice:
        raise SystemExit(f"Not packaged: metadata.txt already gives {', '.join(twice)}; give each in one place.")
    missing = [k for k in PUBLISHER_KEYS if not given[k] and not source.get("general", k, fallback="").strip()]
    if missing and not args.draft:
        raise SystemExit(f"Not packaged: plugins.qgis.org requires the publisher's {', '.join(missing)}: "
                         "make package EMAIL=… TRACKER=… REPOSITORY=… HOMEPAGE=… (or tools/package.py --draft "
                         "for a zip not meant for upload).")
    out = Path(args.out or ROOT / "dist" / f"{PLUGIN_NAME}{'_draft' if args.draft else ''}.zip")
    build(out, given, draft=args.draft)
    print(f"Wrote {out} ({out.stat().st_size / 1e6:.1f} MB; weights stored as {STORED_DTYPE}); "
          "it passes plugins.qgis.org's upload checks that run offline.")
    if missing:
        print(f"DRAFT, not for upload: plugins.qgis.org refuses it without {', '.join(missing)} "
              "(make package EMAIL=… TRACKER=… REPOSITORY=… HOMEPAGE=…).")
    else:
        print(f"For upload with {', '.join(f'{k}={given[k]}' for k in PUBLISHER_KEYS if given[k])}; "
              "the site also checks that tracker, repository and homepage answer.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
