"""Weights are safetensors with metadata; anything that does not match is refused."""
import json
import subprocess

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from backend.errors import SuperResError
from backend.models.dganet import DGANet
from backend.normalise import NORMALISATION
from backend.recipes import RECIPES
from backend.registry import get_model
from backend.weights import convert_weights, load_weights, save_weights
from helpers import ROOT

META = {"architecture": "dganet", "scale": "2", "bands": "1", "normalisation": NORMALISATION,
        "degradation": "bicubic"}


@pytest.fixture
def weights(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "w.safetensors"
    save_weights(path, DGANet(1, 1, upscale=2).state_dict(), META)
    return path


def test_round_trip(weights):
    net = DGANet(1, 1, upscale=2)
    meta = load_weights(weights, "dganet", 2, 1, net)
    assert meta["degradation"] == "bicubic"
    torch.testing.assert_close(net.state_dict(), load_file(str(weights)))


@pytest.mark.parametrize("asked,match", [((4, 1), "scale 2, but scale 4"), ((2, 3), "bands 1, but bands 3")])
def test_metadata_mismatch_is_refused(weights, asked, match):
    scale, bands = asked
    with pytest.raises(SuperResError, match=match):
        load_weights(weights, "dganet", scale, bands, DGANet(bands, bands, upscale=scale))


def test_another_architecture_is_refused(tmp_path):
    path = tmp_path / "w.safetensors"
    save_weights(path, DGANet(1, 1, upscale=2).state_dict(), {**META, "architecture": "edsr"})
    with pytest.raises(SuperResError, match="w.safetensors is for architecture edsr, but architecture dganet"):
        load_weights(path, "dganet", 2, 1, DGANet(1, 1, upscale=2))


@pytest.mark.parametrize("key", ["degradation", "normalisation", "architecture"])
def test_missing_metadata_key_is_refused(tmp_path, key):
    path = tmp_path / "w.safetensors"
    save_weights(path, DGANet(1, 1, upscale=2).state_dict(), {k: v for k, v in META.items() if k != key})
    with pytest.raises(SuperResError, match=f"lacks metadata {key}; it was not made by this project"):
        load_weights(path, "dganet", 2, 1, DGANet(1, 1, upscale=2))


def test_oversized_file_is_refused_unread(weights):
    from backend.weights import MAX_BYTES
    with open(weights, "r+b") as f:      # sparse: no disk is used
        f.truncate(MAX_BYTES + 1)
    with pytest.raises(SuperResError, match="implausible size"):
        load_weights(weights, "dganet", 2, 1, DGANet(1, 1, upscale=2))


def test_shape_mismatch_is_refused(tmp_path):
    path = tmp_path / "w.safetensors"
    save_weights(path, DGANet(1, 1, num_feat=32, upscale=2).state_dict(), META)
    with pytest.raises(SuperResError, match="does not fit"):
        load_weights(path, "dganet", 2, 1, DGANet(1, 1, upscale=2))


def test_truncated_file_is_refused(weights):
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(SuperResError, match="damaged|not a readable"):
        load_weights(weights, "dganet", 2, 1, DGANet(1, 1, upscale=2))


def test_tampered_tensor_fails_hash(weights):
    with safe_open(str(weights), framework="pt") as f:
        meta = f.metadata()
    state = load_file(str(weights))
    state["head.bias"] = state["head.bias"] + 1
    save_file(state, str(weights), metadata=meta)
    with pytest.raises(SuperResError, match="hash"):
        load_weights(weights, "dganet", 2, 1, DGANet(1, 1, upscale=2))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_size_copy_loads_as_float32(weights, tmp_path, dtype):
    half = tmp_path / "half.safetensors"
    meta = convert_weights(weights, half, dtype)
    original = load_file(str(weights))
    stored = load_file(str(half))
    assert all(str(v.dtype) == f"torch.{dtype}" for v in stored.values())
    assert half.stat().st_size < 0.55 * weights.stat().st_size
    assert meta["stored_dtype"] == dtype and meta["degradation"] == "bicubic"
    with safe_open(str(weights), framework="pt") as f:
        assert meta["source_tensor_sha256"] == f.metadata()["tensor_sha256"] != meta["tensor_sha256"]
    net = DGANet(1, 1, upscale=2)
    load_weights(half, "dganet", 2, 1, net)
    for name, value in net.state_dict().items():
        assert value.dtype == torch.float32
        torch.testing.assert_close(value, stored[name].float(), rtol=0, atol=0)   # the stored values, cast
        torch.testing.assert_close(value, original[name], rtol=1e-2, atol=1e-4)   # ... near the originals


def test_half_size_copy_is_checked_like_the_original(weights, tmp_path):
    half = tmp_path / "half.safetensors"
    convert_weights(weights, half, "float16")
    with safe_open(str(half), framework="pt") as f:
        meta = f.metadata()
    state = load_file(str(half))
    save_file({**state, "head.bias": state["head.bias"] + 1}, str(half), metadata=meta)
    with pytest.raises(SuperResError, match="hash"):
        load_weights(half, "dganet", 2, 1, DGANet(1, 1, upscale=2))
    # float32 tensors under a float16 label (or the reverse) are refused, not silently cast
    save_file({k: v.float() for k, v in state.items()}, str(half), metadata=meta)
    with pytest.raises(SuperResError, match="says its tensors are float16, but .* are not"):
        load_weights(half, "dganet", 2, 1, DGANet(1, 1, upscale=2))
    save_file(state, str(half), metadata={**meta, "stored_dtype": "int8"})
    with pytest.raises(SuperResError, match="stores its tensors as 'int8'"):
        load_weights(half, "dganet", 2, 1, DGANet(1, 1, upscale=2))


def test_a_damaged_original_is_not_converted(weights, tmp_path):
    with safe_open(str(weights), framework="pt") as f:
        meta = f.metadata()
    state = load_file(str(weights))
    save_file({**state, "head.bias": state["head.bias"] * 2}, str(weights), metadata=meta)
    with pytest.raises(SuperResError, match="hash"):
        convert_weights(weights, tmp_path / "half.safetensors", "float16")
    assert not (tmp_path / "half.safetensors").exists()


def test_pickle_is_refused(tmp_path):
    path = tmp_path / "w.safetensors"
    torch.save(DGANet(1, 1, upscale=2).state_dict(), path)  # a pickle under our file name
    with pytest.raises(SuperResError, match="not a readable safetensors"):
        load_weights(path, "dganet", 2, 1, DGANet(1, 1, upscale=2))


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda r: r.name)
def test_shipped_weights_match_registry_and_recipe(recipe):
    spec = get_model(recipe.model)
    path = spec.weights_path(recipe.scale, recipe.weights)
    assert path.is_file(), f"{path.name} is not shipped"
    assert path.stat().st_size < 10 * 1024 * 1024
    net = spec.build(recipe.bands, recipe.scale)
    meta = load_weights(path, recipe.model, recipe.scale, recipe.bands, net)
    assert meta["normalisation"] == NORMALISATION and meta["degradation"] == "bicubic"
    rec = json.loads(meta["recipe"])
    assert (rec["model"], rec["scale"], rec["bands"], rec["seed"], rec["loss"], rec["batch"], rec["patch"]) == \
        (recipe.model, recipe.scale, recipe.bands, recipe.seed, recipe.loss, recipe.batch, recipe.patch)
    assert rec.get("photometric", 0.0) == recipe.photometric
    assert set(rec["domains"]) >= set(recipe.domains)
    for key in ("training_data", "steps", "seed", "device", "wall_minutes", "tensor_sha256"):
        assert meta[key]
    assert path.with_suffix(".log.csv").is_file()  # its validation curve is shipped beside it


def test_no_pickle_loading_in_the_code():
    out = subprocess.run(["git", "grep", "-n", "-E", r"torch\.load\(|pickle\.load|(^|[^.])\beval\(|(^|[^.])\bexec\(",
                          "--", "*.py", ":!tests/*"], cwd=ROOT, capture_output=True, text=True)
    assert out.stdout == ""


def test_no_shell_anywhere():
    out = subprocess.run(["git", "grep", "-n", "-E", r"shell=True|os\.system\(|os\.popen\(",
                          "--", "*.py", ":!tests/*"], cwd=ROOT, capture_output=True, text=True)
    assert out.stdout == ""
