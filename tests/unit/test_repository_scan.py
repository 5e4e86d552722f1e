"""The zip `make package` builds passes plugins.qgis.org's upload validation and its scan (QEP 408).

The scan runs the site's pinned Bandit, detect-secrets and flake8 from
build/scan-venv (`make scan-venv`), at the site's settings (tools/scan_zip.py).
"""
import configparser
import io
import stat
import subprocess
import sys
import zipfile

import pytest

from helpers import ROOT

sys.path.insert(0, str(ROOT / "tools"))
import package  # noqa: E402
import scan_zip  # noqa: E402

# RFC 2606 reserved names, which never belong to anyone: package.py refuses them, and only the
# fixture below lets them through, to build the zip exactly as an upload is built.
PUBLISHER = {"email": "publisher@mail.invalid", "tracker": "https://tracker.invalid/issues",
             "repository": "https://repository.invalid/a%20b", "homepage": "https://homepage.invalid/"}
TOP = package.PLUGIN_NAME


@pytest.fixture(scope="module")
def upload_zip(tmp_path_factory):
    """The zip as `make package EMAIL=… TRACKER=… REPOSITORY=… HOMEPAGE=…` builds it."""
    out = tmp_path_factory.mktemp("dist") / f"{TOP}.zip"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(package, "RESERVED_SUFFIXES", ())
        args = [a for k, v in PUBLISHER.items() for a in (f"--{k}", v)]
        assert package.main(["--out", str(out), *args]) == 0
    return out


def scan(path):
    """scan_zip.scan, failing the test in one line when build/scan-venv is missing."""
    try:
        return scan_zip.scan(path)
    except SystemExit as e:
        pytest.fail(str(e), pytrace=False)


def variant(src, dst, metadata=None, add=()):
    """A copy of the zip ``src``, without its weights and sample raster (to stay quick), with another
    metadata.txt text and extra (name, bytes, mode) entries."""
    with zipfile.ZipFile(src) as z, zipfile.ZipFile(dst, "w") as out:
        for info in z.infolist():
            if info.filename.endswith((".safetensors", ".tif")):
                continue
            data = z.read(info)
            if info.filename == f"{TOP}/metadata.txt" and metadata is not None:
                data = metadata(data.decode("utf-8")).encode("utf-8")
            out.writestr(info, data)
        for name, data, mode in add:
            info = zipfile.ZipInfo(f"{TOP}/{name}")
            info.external_attr = mode << 16
            out.writestr(info, data)
    return dst


def test_the_zip_passes_the_sites_scan(upload_zip):
    """Bandit and detect-secrets block an upload on any finding; flake8 is kept clean too."""
    assert scan(upload_zip) == {"bandit": [], "detect-secrets": [], "flake8": []}


def test_the_scan_finds_what_the_site_blocks(tmp_path, upload_zip):
    """Each tool, at the site's settings, reports a finding of its own kind: the scan is not empty by accident."""
    code = (b"import subprocess\n\n\ndef run(cmd):\n    return subprocess.run(cmd)\n\n\n"
            b"def run(cmd):  # redefined\n    return None\n\n\n"
            b"ARCHIVE_SHA256 = '8c2798d8e9be7f0004b194fe207b76c1d9fff6e711b3db67b9508dcd5d00ae54'\n")
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr(f"{TOP}/backend/bad.py", code)
    found = scan(bad)
    assert [f.split(": ", 1)[1][:4] for f in found["bandit"]] == ["B603"], found
    assert found["detect-secrets"] == [f"{TOP}/backend/bad.py:12: Hex High Entropy String"], found
    assert [f.split(": ", 1)[1][:4] for f in found["flake8"]] == ["F811"], found


def test_a_missing_scan_venv_names_the_make_rule(monkeypatch, tmp_path):
    monkeypatch.setattr(scan_zip, "SCAN_VENV", tmp_path / "scan-venv")
    with pytest.raises(SystemExit, match=r"scan-venv is missing: run `make scan-venv`") as e:
        scan_zip.check_venv()
    assert "\n" not in str(e.value)


def test_the_zip_passes_the_sites_validation(upload_zip):
    assert package.check_zip(upload_zip, expect=PUBLISHER) == []
    with zipfile.ZipFile(upload_zip) as z:
        meta = package.read_metadata(z, f"{TOP}/metadata.txt")     # as the site parses it
        modes = {info.external_attr >> 16 for info in z.infolist()}
        names = z.namelist()
    assert {k: meta[k] for k in PUBLISHER} == PUBLISHER                # '%20' comes back as written
    assert meta["qgisMaximumVersion"] == "4.99"
    assert modes == {stat.S_IFREG | 0o644}           # tools' and tests' exec bits in git never land here
    assert f"{TOP}/backend/datasets.py" not in names   # only `make data` uses it
    assert f"{TOP}/backend/registry.py" in names


def test_metadata_with_a_bare_per_cent_is_refused(tmp_path, upload_zip):
    bad = variant(upload_zip, tmp_path / "pc.zip", metadata=lambda t: t.replace("about 40 per cent", "about 40%"))
    assert package.check_zip(bad) == [
        "metadata.txt's changelog has a bare '%', which the site's ConfigParser refuses (write %%)"]


@pytest.mark.parametrize("key", ["version", "email", "homepage"])
def test_a_missing_required_key_is_named(tmp_path, upload_zip, key):
    bad = variant(upload_zip, tmp_path / "key.zip",
                  metadata=lambda t: "".join(line for line in t.splitlines(keepends=True)
                                             if not line.startswith(f"{key}=")))
    assert package.check_zip(bad) == [f"metadata.txt lacks {key}"]


@pytest.mark.parametrize("name, mode, problem", [
    (".secret_notes", 0o100644, "is hidden or a cache"),
    ("resources/.DS_Store", 0o100644, "is hidden or a cache"),
    ("tools_run.py", 0o100755, "has an executable mode (-rwxr-xr-x)"),
    ("backend/_fast.so", 0o100644, "is compiled or executable"),
    ("install.sh", 0o100644, "is compiled or executable"),
])
def test_hidden_compiled_or_executable_entries_are_refused(tmp_path, upload_zip, name, mode, problem):
    bad = variant(upload_zip, tmp_path / "entry.zip", add=[(name, b"x = 1\n", mode)])
    assert package.check_zip(bad) == [f"{TOP}/{name} {problem}"]


def test_a_module_importing_one_the_zip_leaves_out_is_refused(tmp_path, upload_zip):
    code = b"from .datasets import FILES\n"
    bad = variant(upload_zip, tmp_path / "imp.zip", add=[("backend/uses_data.py", code, 0o100644)])
    assert package.check_zip(bad) == [f"{TOP}/backend/uses_data.py:1 imports .datasets, which the zip leaves out"]


def test_a_failing_build_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(package, "SHIPPED", ("__init__.py", "metadata.txt", "LICENSE"))
    monkeypatch.setattr(package, "MAX_ZIP_BYTES", 100)
    out = tmp_path / "dist" / f"{TOP}.zip"
    with pytest.raises(SystemExit, match=r"breaks plugins.qgis.org's rules.*MB, over the 0 MB limit"):
        package.build(out, draft=True)
    assert list(out.parent.iterdir()) == []


def run_cli(*args):
    return subprocess.run([sys.executable, "tools/package.py", *args], cwd=ROOT, capture_output=True, text=True)


def test_without_the_publisher_nothing_is_built(tmp_path):
    out = tmp_path / "p.zip"
    proc = run_cli("--out", str(out), "--email", PUBLISHER["email"])   # refused as reserved before the rest
    assert proc.returncode == 1 and "reserved example address" in proc.stderr
    proc = run_cli("--out", str(out))
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "Not packaged: plugins.qgis.org requires the publisher's email, tracker, repository, homepage: "
        "make package EMAIL=… TRACKER=… REPOSITORY=… HOMEPAGE=… (or tools/package.py --draft for a zip "
        "not meant for upload)."]
    proc = run_cli("--out", str(out), "--email", "nobody", "--tracker", "http://bugs", "--repository", "git@host:x")
    assert proc.returncode == 1
    assert proc.stderr.strip() == ("Not packaged: email 'nobody' is not an address; tracker 'http://bugs' has no "
                                   "public host name (such as http://bugs); repository 'git@host:x' is not an "
                                   "http(s) URL with a host.")
    assert not out.exists()


def test_publisher_values_read_back_through_configparser():
    text = package.with_publisher((ROOT / "metadata.txt").read_text(encoding="utf-8"), PUBLISHER)
    parser = configparser.ConfigParser()
    parser.optionxform = str
    parser.read_file(io.StringIO(text))
    assert {k: parser.get("general", k) for k in PUBLISHER} == PUBLISHER
    assert "repository=https://repository.invalid/a%%20b\n" in text
