"""Error and log texts read by analysts, in QGIS and on the command line (issue #21).

Messages shown inside QGIS name no make targets; a model/scale pair without
weights names what does have them; the weight-set choice names the knob in
both front ends.
"""
import subprocess
import sys

import pytest

from backend.errors import SuperResError
from backend.registry import MODELS, check_scale, choose_weight_set, get_model, resolve_weight_set
from backend.weights import read_metadata
from helpers import ROOT


def test_scale_without_weights_names_the_scales_and_the_models_that_have_them():
    with pytest.raises(SuperResError) as err:
        check_scale(get_model("edsr"), 2)
    text = str(err.value)
    assert text.startswith("Model 'edsr' has no weights for x2; it has: x4.")
    # every network with x2 weights is named, and the baselines that run at any scale
    x2 = [m.name for m in MODELS if m.kind == "network" and 2 in m.available_scales()]
    assert x2 and all(f"{name}" in text.split("At x2, ", 1)[1] for name in x2)
    assert "bicubic, bilinear, nearest run at any scale" in text
    assert "make" not in text and "train" not in text


def test_scale_no_network_has(monkeypatch):
    for spec in MODELS:
        if spec.kind == "network":
            monkeypatch.setattr(type(spec), "available_scales", lambda self: ())
    with pytest.raises(SuperResError, match="it has: none. No network has x8 weights; the baselines"):
        check_scale(get_model("dganet"), 8)


def test_weight_set_choice_names_the_knob_of_both_front_ends():
    _, why = choose_weight_set(("aerial", "landsat"), 30.0, "UInt16")
    assert "WEIGHTS in QGIS" in why and "--weights on the command line" in why
    assert "set WEIGHTS" not in why
    with pytest.raises(SuperResError, match=r"no 'landsat' weights; it has: aerial\. Choose one of those "
                                            r"or auto \(WEIGHTS in QGIS, --weights on the command line\)"):
        resolve_weight_set(get_model("edsr"), 4, "landsat", 0.1, "Byte")


def test_missing_weights_file_names_no_make_target(tmp_path):
    with pytest.raises(SuperResError) as err:
        read_metadata(tmp_path / "dganet_x4_aerial.safetensors")
    assert "Reinstall the plugin" in str(err.value) and "make" not in str(err.value)


def cli(*args):
    return subprocess.run([sys.executable, "-m", "backend", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True)


def test_train_recipes_without_a_matching_recipe_is_an_error():
    proc = cli("train-recipes", "--model", "edsr", "--scale", "2")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.startswith("Error: No recipe matches --model edsr --scale 2.")
    assert "edsr_x4_aerial" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_missing_output_folder_is_one_line_on_the_command_line(tmp_path):
    # qgis_process shows a refused run three times; that is QGIS 3.22's own logging (see README)
    from helpers import AERIAL
    proc = cli("superresolve", AERIAL, tmp_path / "missing" / "o.tif", "--model", "bicubic", "--scale", "2")
    assert proc.returncode == 2 and proc.stderr.count("does not exist") == 1
    assert len(proc.stderr.strip().splitlines()) == 1
