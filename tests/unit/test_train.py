"""The trainer on a tiny packed file made from committed crops: recipe metadata, resume, init."""
import dataclasses
import json

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from backend.recipes import Recipe
from backend.train import learning_rate, train
from helpers import AERIAL, read

TINY = Recipe("dganet", 4, "aerial", steps=4, batch=2, patch=32)


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    """A packed .npz like `make data` writes: train rows on top, validation rows below."""
    img = read(AERIAL)
    path = tmp_path_factory.mktemp("data") / "packed.npz"
    np.savez(path, **{"aerial/osbs/train": img[:, :96], "aerial/osbs/val": img[:, 96:]})
    return path


def _run(recipe, packed, tmp_path, name):
    out = tmp_path / f"{name}.safetensors"
    meta = train(recipe, packed, out, tmp_path / f"run_{name}", log=lambda _m: None, val_every=2)
    return out, meta


def test_metadata_log_and_resume_equal_a_straight_run(packed, tmp_path):
    straight, meta = _run(TINY, packed, tmp_path, "straight")
    assert meta["steps"] == "4" and meta["weights_set"] == "aerial" and meta["initialised_from"] == "random"
    with safe_open(str(straight), "pt") as f:
        rec = json.loads(f.metadata()["recipe"])
    assert rec["loss"] == "gradient_aware" and rec["batch"] == 2 and rec["seed"] == 0
    log = straight.with_suffix(".log.csv").read_text().splitlines()
    assert log[0].startswith("step,minutes,train_loss,val_psnr") and len(log) == 3   # steps 2 and 4
    # two steps, stop, then resume to four from the checkpoint
    _run(dataclasses.replace(TINY, steps=2), packed, tmp_path, "resumed")
    resumed, meta2 = _run(TINY, packed, tmp_path, "resumed")
    assert meta2["steps"] == "4"
    a, b = load_file(str(straight)), load_file(str(resumed))
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6)


def test_init_from_shipped_weights_is_recorded(packed, tmp_path):
    from backend.registry import WEIGHTS_DIR
    from backend.weights import read_metadata
    shipped = read_metadata(WEIGHTS_DIR / "dganet_x4_aerial.safetensors")
    out, meta = _run(dataclasses.replace(TINY, steps=1, init="dganet_x4_aerial"), packed, tmp_path, "init")
    assert meta["initialised_from"].startswith(f"dganet_x4_aerial ({shipped['steps']} steps")
    assert shipped["tensor_sha256"] in meta["initialised_from"]
    # a resumed run keeps the record of where training started
    resumed, meta2 = _run(dataclasses.replace(TINY, steps=2, init="dganet_x4_aerial"), packed, tmp_path, "init")
    assert meta2["initialised_from"] == meta["initialised_from"]
    # one step from the shipped weights stays close to them; from random it would not
    shipped = load_file(str(WEIGHTS_DIR / "dganet_x4_aerial.safetensors"))
    tuned = load_file(str(out))
    assert max(float((tuned[k] - shipped[k]).abs().max()) for k in shipped) < 1e-2


def test_cosine_schedule_holds_then_decays_to_zero():
    r = Recipe("dganet", 4, "aerial", steps=300, lr=2e-4, schedule="cosine", decay_from=100)
    assert learning_rate(r, 0) == learning_rate(r, 99) == 2e-4
    assert learning_rate(r, 100) == pytest.approx(2e-4)
    assert learning_rate(r, 200) == pytest.approx(1e-4)
    assert learning_rate(r, 300) == pytest.approx(0.0, abs=1e-12)
    assert learning_rate(dataclasses.replace(r, schedule="constant"), 250) == 2e-4


def test_ablation_arm_is_the_shipped_runs_prefix():
    # dganet_ga stands for the dganet x4 aerial run at the ablation budget:
    # same data, seed, batch and patch, and the same rate at every step.
    from backend.recipes import find_recipe
    full, arm = find_recipe("dganet", 4, "aerial"), find_recipe("dganet_ga", 4, "aerial")
    for other in ("edsr", "dganet_l2", "dganet_sg"):
        assert find_recipe(other, 4, "aerial").steps == arm.steps
    assert (full.batch, full.patch, full.seed, full.loss) == (arm.batch, arm.patch, arm.seed, arm.loss)
    assert full.steps > arm.steps
    assert all(learning_rate(full, i) == learning_rate(arm, i) for i in range(arm.steps))


def test_larger_variant_grows_from_the_shipped_dganet(packed, tmp_path):
    """dganet_large starts as exactly the shipped dganet function, then trains all its blocks."""
    from backend.errors import SuperResError
    from backend.registry import LARGE_BLOCKS, WEIGHTS_DIR, get_model
    from backend.train import grow_from
    from backend.weights import load_weights
    small = get_model("dganet").build(3, 4)
    load_weights(WEIGHTS_DIR / "dganet_x4_aerial.safetensors", "dganet", 4, 3, small)
    large = get_model("dganet_large").build(3, 4)
    assert large.num_block == LARGE_BLOCKS > small.num_block
    grow_from(WEIGHTS_DIR / "dganet_x4_aerial.safetensors", large)
    img = read(AERIAL)[:, :48, :48]
    x = torch.from_numpy(img.astype(np.float32) / 255.0)[None]
    with torch.no_grad():
        torch.testing.assert_close(large(x), small(x), rtol=0, atol=1e-5)
    # a file that does not nest (one UpBlock fewer) is refused by name
    with pytest.raises(SuperResError, match="cannot seed"):
        grow_from(WEIGHTS_DIR / "dganet_x2_aerial.safetensors", get_model("dganet_large").build(3, 4))
    # through the trainer: the record says it was grown, and the new blocks learn
    recipe = Recipe("dganet_large", 4, "aerial", steps=2, batch=2, patch=32, init="dganet_x4_aerial")
    out, meta = _run(recipe, packed, tmp_path, "large")
    assert "grown from dganet" in meta["initialised_from"]
    tuned = load_file(str(out))
    assert float(tuned[f"body.{LARGE_BLOCKS - 1}.conv2.weight"].abs().max()) > 0
