# Raster Super-Resolution: set-up, demo, tests, training and packaging.
# `make demo` and `make test` work on a fresh Debian 12 machine (run as root
# or with sudo rights for apt-get).

SHELL := /bin/bash
SYS_PYTHON := /usr/bin/python3
VENV := .venv
PY := $(VENV)/bin/python
APT_PACKAGES := qgis python3-qgis qgis-providers python3-gdal gdal-bin python3-venv python3-skimage python3-matplotlib \
	libegl1 libgl1 libxkbcommon0 libfontconfig1
PIP_PACKAGES := torch==2.13.0 safetensors pytest pytest-qgis
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
export QT_QPA_PLATFORM ?= offscreen
MODEL ?=
SCALE ?=
WEIGHTS ?=
FULL ?=
SCAN_VENV := build/scan-venv
# The publisher's metadata for plugins.qgis.org, from the command line only (`make package EMAIL=…`):
# an EMAIL or REPOSITORY set in the environment for other tools is not taken.
EMAIL :=
TRACKER :=
REPOSITORY :=
HOMEPAGE :=

.PHONY: setup system-packages scan-venv demo test test-latest test-unit test-qgis install package data train evaluate bench docs gui-check clean

setup: system-packages $(VENV)/.stamp

system-packages:
	@if ! dpkg -s $(APT_PACKAGES) >/dev/null 2>&1; then \
	  echo "Installing QGIS and GDAL from Debian's packages..."; \
	  $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q $(APT_PACKAGES); \
	fi

# Debian's GDAL and QGIS are built against the system numpy: pin it so pip never adds a second one.
$(VENV)/.stamp: Makefile
	@[ -x $(PY) ] || $(SYS_PYTHON) -m venv --system-site-packages $(VENV)
	@$(SYS_PYTHON) -c "import numpy; print('numpy==' + numpy.__version__)" > $(VENV)/constraints.txt
	$(PY) -m pip install -q --disable-pip-version-check -c $(VENV)/constraints.txt $(PIP_PACKAGES)
	@touch $@

QT6_VENV := build/qt6-venv

# PyQt6 (as QGIS 4 uses it) and flake8-qgis for tests/unit/test_qt6.py, in a venv of their own:
# nothing of PyQt6 may reach .venv, whose QGIS runs on PyQt5.
$(QT6_VENV)/.stamp: tools/qt6-requirements.txt
	@[ -x $(QT6_VENV)/bin/python ] || $(SYS_PYTHON) -m venv $(QT6_VENV)
	$(QT6_VENV)/bin/python -m pip install -q --disable-pip-version-check -r tools/qt6-requirements.txt
	@touch $@

demo: setup
	$(PY) tools/demo.py

test: setup $(QT6_VENV)/.stamp scan-venv
	$(PY) -m pytest tests/unit -p no:qgis -q
	$(PY) -m pytest tests/qgis -q

# The whole suite on Debian sid's QGIS 3.44 (Python 3.14, numpy 2, GDAL 3.13, Debian's python3-torch)
# in a debootstrap chroot outside the work tree (SID_DIR, default /var/tmp/superres-sid), built once, reused.
test-latest:
	tools/test_latest.sh

install: setup
	$(PY) tools/install_plugin.py

package: setup scan-venv
	$(PY) tools/package.py --email "$(EMAIL)" --tracker "$(TRACKER)" --repository "$(REPOSITORY)" --homepage "$(HOMEPAGE)"
	$(PY) tools/scan_zip.py dist/raster_super_resolution.zip

# plugins.qgis.org's upload scan tools, pinned, in their own venv (never in .venv): tools/scan_zip.py.
scan-venv: $(SCAN_VENV)/.stamp

$(SCAN_VENV)/.stamp: tools/scan-requirements.txt
	@[ -x $(SCAN_VENV)/bin/python ] || $(SYS_PYTHON) -m venv $(SCAN_VENV)
	$(SCAN_VENV)/bin/pip install -q --disable-pip-version-check -r tools/scan-requirements.txt
	@touch $@

data:
	$(SYS_PYTHON) tools/fetch_data.py

train: setup
	$(PY) -m backend train-recipes $(if $(MODEL),--model $(MODEL)) $(if $(SCALE),--scale $(SCALE)) $(if $(WEIGHTS),--weights $(WEIGHTS))

evaluate: setup
	$(PY) tools/evaluate_shipped.py

bench: setup
	$(PY) tools/bench.py $(if $(FULL),--full)

docs: setup
	$(PY) tools/update_docs.py

# Real QGIS under Xvfb with a fresh profile: the dialog, preview and run, screenshots in build/gui/.
gui-check: setup
	$(PY) tools/gui_check.py

clean:
	rm -rf build dist .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
