#!/usr/bin/env bash
# `make test-latest`: the whole suite on the newest QGIS Debian ships (sid: QGIS 3.44, Python 3.14,
# numpy 2, GDAL 3.13, Debian's python3-torch), in a debootstrap chroot, with the plugin zip
# installed in a fresh profile and no PYTHONPATH.
#
#   tools/test_latest.sh                           build the chroot once (reused), test the working tree
#   SID_DIR=/path tools/test_latest.sh             another chroot folder (default /var/tmp/superres-sid)
#   SID_REBUILD=1 tools/test_latest.sh             debootstrap it afresh
#   PYTEST_ARGS="-k cli -x" tools/test_latest.sh   passed to both tiers
#   TIERS=qgis tools/test_latest.sh                one tier only (default: "unit qgis")
#
# Needs root (or sudo), debootstrap (installed if missing), Debian's mirror and PyPI. The chroot
# lives outside the work tree, so `make clean` never deletes a folder with /dev bound into it;
# every mount is undone on exit, failure or Ctrl-C. The exit status is the suite's.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SID_DIR=${SID_DIR:-/var/tmp/superres-sid}
SID_MIRROR=${SID_MIRROR:-http://deb.debian.org/debian}
PYTEST_ARGS=${PYTEST_ARGS:-}
TIERS=${TIERS:-unit qgis}
# The Makefile's APT_PACKAGES, from sid, with Debian's torch, safetensors and pytest instead of
# the venv's; python3-distributed for the Dask tests, git for the tests that `git grep` the
# sources, mount for the full-disk test's small tmpfs.
SID_PACKAGES="qgis python3-qgis qgis-providers python3-gdal gdal-bin python3-venv python3-skimage python3-matplotlib
libegl1 libgl1 libxkbcommon0 libfontconfig1
python3-torch python3-safetensors python3-pytest python3-distributed python3-pip ca-certificates git mount"
PIP_PACKAGES="pytest-qgis==5.0.2"
RECIPE="$SID_MIRROR $SID_PACKAGES $PIP_PACKAGES"   # a change reinstalls the packages
SRC=/root/superres            # the working tree's copy, inside the chroot
CONFIG=/root/qgis-zip-config  # a fresh QGIS config folder holding the zip's install

say() { printf '[test-latest] %s\n' "$*" >&2; }
die() { say "Error: $*"; exit 2; }

# ---- mounts: bound only while the script runs, always undone -----------------------------------
MOUNTS=()
mounted_under() { findmnt -rn -o TARGET | awk -v d="$1" 'index($0, d "/") == 1 || $0 == d'; }
unmount_all() {
    local i
    for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
        if mountpoint -q "${MOUNTS[$i]}"; then
            umount "${MOUNTS[$i]}" 2>/dev/null || umount -l "${MOUNTS[$i]}"
        fi
    done
    MOUNTS=()
    local d m
    for d in "$SID_DIR" "$SID_DIR.new"; do
        # anything else still mounted there (a test's own tmpfs, say), deepest first
        for m in $(mounted_under "$d" | sort -r); do umount "$m" 2>/dev/null || umount -l "$m" || true; done
        if [ -n "$(mounted_under "$d")" ]; then
            say "Error: still mounted under $d:"; mounted_under "$d" >&2
            return 1
        fi
    done
}
on_exit() {
    local rc=$?
    trap - EXIT INT TERM
    unmount_all || rc=3
    exit "$rc"
}
bind() {  # bind <host path> <chroot path>
    mkdir -p "$2"
    mount --bind "$1" "$2"
    MOUNTS+=("$2")
}
mount_all() {  # mount_all <chroot>
    bind /proc "$1/proc"
    bind /sys "$1/sys"
    bind /dev "$1/dev"
    bind /dev/pts "$1/dev/pts"
    if mountpoint -q /dev/shm; then bind /dev/shm "$1/dev/shm"; fi
    cp -L /etc/resolv.conf "$1/etc/resolv.conf"
}
in_chroot() {  # in_chroot <chroot> <command...>: a clean environment, no PYTHONPATH, headless Qt
    local d=$1; shift
    chroot "$d" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        LANG=C.UTF-8 QT_QPA_PLATFORM=offscreen DEBIAN_FRONTEND=noninteractive "$@"
}

# ---- the chroot: debootstrapped once, packages (re)installed when the list changes ----------------
usable() {  # usable <chroot>: the packages of this RECIPE, importable (with /proc: psutil needs it)
    [ -f "$1/.superres-ready" ] && [ "$(cat "$1/.superres-ready")" = "$RECIPE" ] || return 1
    local ok=0
    mount_all "$1"
    in_chroot "$1" python3 -c "import qgis.core, torch, safetensors, osgeo.gdal, pytest_qgis, distributed" \
        >/dev/null 2>&1 || ok=1
    unmount_all
    return "$ok"
}

install_packages() {  # install_packages <chroot> (mounts it while apt and pip run)
    local d=$1 log="$SID_DIR.apt.log"
    rm -f "$d/.superres-ready"
    # sid's Release file can be older than the clock; recommends are left out as on a lean install
    printf 'Acquire::Check-Valid-Until "false";\nAPT::Install-Recommends "false";\n' \
        > "$d/etc/apt/apt.conf.d/99superres"
    echo "deb $SID_MIRROR sid main" > "$d/etc/apt/sources.list"
    # the host's own CA certificates, for pip behind a TLS-inspecting proxy
    mkdir -p "$d/usr/local/share/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$d/usr/local/share/ca-certificates/" 2>/dev/null || true
    mount_all "$d"
    say "installing QGIS, GDAL, torch and pytest in the chroot (log: $log)"
    # shellcheck disable=SC2086
    if ! { in_chroot "$d" apt-get update -q && in_chroot "$d" apt-get install -y -q $SID_PACKAGES; } > "$log" 2>&1; then
        tail -5 "$log" >&2
        die "apt-get in the chroot failed (log: $log)"
    fi
    in_chroot "$d" update-ca-certificates >> "$log" 2>&1
    # shellcheck disable=SC2086
    in_chroot "$d" python3 -m pip install -q --break-system-packages --root-user-action=ignore \
        --disable-pip-version-check $PIP_PACKAGES || die "pip in the chroot failed"
    in_chroot "$d" apt-get clean
    unmount_all
    echo "$RECIPE" > "$d/.superres-ready"
}

bootstrap() {  # a new chroot in $SID_DIR.new, renamed to $SID_DIR once whole
    local new="$SID_DIR.new" d
    if ! command -v debootstrap >/dev/null; then
        say "installing debootstrap on the host"
        apt-get install -y -q debootstrap >/dev/null 2>&1 ||
            { apt-get update -q >/dev/null && apt-get install -y -q debootstrap >/dev/null; } ||
            die "could not install debootstrap"
    fi
    for d in "$SID_DIR" "$new"; do
        [ -z "$(mounted_under "$d")" ] || die "something is mounted under $d: unmount it first"
    done
    rm -rf "$new"
    say "debootstrap sid into $new (log: $SID_DIR.debootstrap.log)"
    if ! debootstrap --variant=minbase sid "$new" "$SID_MIRROR" > "$SID_DIR.debootstrap.log" 2>&1; then
        tail -5 "$SID_DIR.debootstrap.log" >&2
        die "debootstrap failed (log: $SID_DIR.debootstrap.log)"
    fi
    install_packages "$new"
    rm -rf "$SID_DIR"
    mv "$new" "$SID_DIR"
}

ensure_chroot() {
    local start=$SECONDS
    if [ -n "${SID_REBUILD:-}" ] || [ ! -x "$SID_DIR/usr/bin/apt-get" ]; then
        bootstrap
    elif usable "$SID_DIR"; then
        say "reusing $SID_DIR"
        return
    else
        install_packages "$SID_DIR" || true
        usable "$SID_DIR" || { say "the chroot is broken: building it afresh"; bootstrap; }
    fi
    usable "$SID_DIR" || die "the chroot cannot import qgis, torch, GDAL, dask and pytest-qgis"
    say "chroot ready in $((SECONDS - start)) s"
}

# ---- the working tree as it is now (tracked and untracked, not ignored), as a fresh clone --------
copy_tree() {
    rm -rf "${SID_DIR:?}$SRC" "${SID_DIR:?}$CONFIG" "${SID_DIR:?}/root/dist"
    mkdir -p "$SID_DIR$SRC"
    (cd "$ROOT" && git ls-files -z --cached --others --exclude-standard |
        while IFS= read -r -d '' f; do if [ -e "$f" ]; then printf '%s\0' "$f"; fi; done |
        tar --null -T - -cf -) | tar -xf - -C "$SID_DIR$SRC"
    # a repository of its own, files added: the tests that `git grep` the sources search them
    in_chroot "$SID_DIR" sh -c "cd $SRC && git init -q && git add -A"
}

# ---- build/qt6-venv and build/scan-venv, as `make test` makes them, kept between runs ------------
tool_venvs() {
    local name req want
    for name in qt6 scan; do
        req=tools/$name-requirements.txt
        [ -f "$ROOT/$req" ] || continue
        want=$(sha256sum < "$ROOT/$req")
        if [ "$(cat "$SID_DIR/root/venvs/$name/.requirements-sha256" 2>/dev/null)" != "$want" ]; then
            say "build/$name-venv from $req"
            in_chroot "$SID_DIR" sh -c "rm -rf /root/venvs/$name && python3 -m venv /root/venvs/$name &&
                /root/venvs/$name/bin/python -m pip install -q --disable-pip-version-check -r $SRC/$req" ||
                die "could not make build/$name-venv in the chroot"
            echo "$want" > "$SID_DIR/root/venvs/$name/.requirements-sha256"
        fi
        mkdir -p "$SID_DIR$SRC/build"
        ln -s "/root/venvs/$name" "$SID_DIR$SRC/build/$name-venv"
    done
}

# ---- the zip, installed as a user installs it: a fresh profile, no PYTHONPATH ------------------
install_zip() {
    say "packaging the plugin and installing the zip in a fresh profile"
    in_chroot "$SID_DIR" sh -c "cd $SRC && python3 tools/package.py --draft --out /root/dist/raster_super_resolution.zip" >&2 ||
        die "tools/package.py failed in the chroot"
    in_chroot "$SID_DIR" python3 - "$SRC" "$CONFIG" <<'EOF' || die "installing the zip failed"
import sys, zipfile
from pathlib import Path
sys.path.insert(0, sys.argv[1] + "/tools")
from qgis_profile import enable
profile = Path(sys.argv[2]) / "profiles" / "default"
(profile / "python" / "plugins").mkdir(parents=True)
zipfile.ZipFile("/root/dist/raster_super_resolution.zip").extractall(profile / "python" / "plugins")
enable(profile)
EOF
    # the zip's provider in qgis_process: torch from the system, nothing from the work tree
    if ! in_chroot "$SID_DIR" sh -c "cd /tmp && QGIS_CUSTOM_CONFIG_PATH=$CONFIG qgis_process run superres:superresolve -- \
            INPUT=$SRC/tests/data/osbs_rgb_128.tif MODEL=dganet SCALE=4 OUTPUT=/tmp/zip_check.tif \
            > /tmp/zip_check.log 2>&1 && gdalinfo /tmp/zip_check.tif | grep -q 'Size is 512, 512'"; then
        tail -20 "$SID_DIR/tmp/zip_check.log" >&2
        die "the installed zip did not super-resolve with qgis_process"
    fi
    say "the zip, installed in a fresh profile, ran dganet x4 through qgis_process"
}

main() {
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null || die "run as root (debootstrap, chroot and mount need it)"
        exec sudo --preserve-env=SID_DIR,SID_MIRROR,SID_REBUILD,PYTEST_ARGS,TIERS "$0" "$@"
    fi
    SID_DIR=$(realpath -m "$SID_DIR")
    case "$SID_DIR/" in
        "$ROOT"/*) die "SID_DIR ($SID_DIR) is inside the work tree: \`make clean\` could delete it while /dev is bound into it" ;;
        /|/bin/*|/boot/*|/dev/*|/etc/*|/home/|/lib*|/proc/*|/root/|/run/*|/sbin/*|/sys/*|/tmp/|/usr/*|/var/|/var/tmp/)
            die "SID_DIR ($SID_DIR) is a system folder" ;;
    esac
    trap on_exit EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    mkdir -p "$(dirname "$SID_DIR")"
    exec 9>"$SID_DIR.lock"
    flock -n 9 || die "another test-latest run holds $SID_DIR.lock"

    ensure_chroot
    copy_tree
    mount_all "$SID_DIR"
    say "QGIS $(in_chroot "$SID_DIR" dpkg-query -W -f '${Version}' qgis), $(in_chroot "$SID_DIR" python3 -c '
import sys, numpy, torch
from osgeo import gdal
print(f"Python {sys.version.split()[0]}, numpy {numpy.__version__}, GDAL {gdal.__version__}, torch {torch.__version__}")')"
    tool_venvs
    install_zip

    local rc=0 t0=$SECONDS tier
    for tier in $TIERS; do
        case $tier in
            unit) say "unit tier"
                  in_chroot "$SID_DIR" sh -c "cd $SRC && python3 -m pytest tests/unit -p no:qgis -q -rfEs $PYTEST_ARGS" ||
                      rc=$((rc ? rc : $?)) ;;
            qgis) say "QGIS tier"
                  in_chroot "$SID_DIR" sh -c "cd $SRC && python3 -m pytest tests/qgis -q -rfEs $PYTEST_ARGS" ||
                      rc=$((rc ? rc : $?)) ;;
            *) die "unknown tier '$tier' in TIERS (unit, qgis)" ;;
        esac
    done
    say "suite ($TIERS): $((SECONDS - t0)) s, exit status $rc"
    return "$rc"
}

# one line, read whole before main runs: editing this file during a run cannot break that run
main "$@"; exit "$?"
