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
from helpers import AERIAL, one_training_step, read

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


def test_transfer_across_scales_copies_what_the_scales_share(packed, tmp_path):
    """A x2 recipe may start from the x4 file of its architecture: head, body and first upscaler copied."""
    from backend.errors import SuperResError
    from backend.registry import WEIGHTS_DIR, get_model
    from backend.train import transfer_from
    x4_file = WEIGHTS_DIR / "dganet_x4_aerial.safetensors"
    x4 = load_file(str(x4_file))
    x2 = get_model("dganet").build(3, 2)
    assert transfer_from(x4_file, x2) == []          # every x2 tensor has its x4 twin
    for k, v in x2.state_dict().items():
        torch.testing.assert_close(v, x4[k].float(), rtol=0, atol=0)
    # the other way, the second upscaler stage stays random
    fresh = transfer_from(WEIGHTS_DIR / "dganet_x2_aerial.safetensors", get_model("dganet").build(3, 4))
    assert fresh and all(not k.startswith(("head", "body")) for k in fresh)
    with pytest.raises(SuperResError, match="1-band"):
        transfer_from(WEIGHTS_DIR / "dganet_x4_landsat.safetensors", get_model("dganet").build(3, 2))
    # through the trainer: recorded, and one step from the x4 body stays near it
    recipe = Recipe("dganet", 2, "aerial", steps=1, batch=2, patch=32, init="dganet_x4_aerial")
    out, meta = _run(recipe, packed, tmp_path, "x2_from_x4")
    assert "transferred from x4: every tensor shared" in meta["initialised_from"]
    tuned = load_file(str(out))
    assert max(float((tuned[k] - x4[k].float()).abs().max()) for k in tuned if k.startswith("body.")) < 1e-2


def test_gpsr_step_supervises_the_gradient_maps_at_every_scale(packed, tmp_path):
    """GPSR's objective: one step moves the gradient branch's G_s convs, which only eq. 14 trains."""
    recipe = Recipe("gpsr", 4, "aerial", steps=1, batch=2, patch=32, loss="gpsr")
    net, before, loss = one_training_step(recipe, packed)
    assert np.isfinite(loss) and loss > 0
    after = net.state_dict()
    for j in range(2):
        assert not torch.equal(before[f"grad_modules.{j}.to_grad.weight"], after[f"grad_modules.{j}.to_grad.weight"])
    # through the trainer: weights, metadata and the recipe's loss
    out, meta = _run(dataclasses.replace(recipe, steps=2), packed, tmp_path, "gpsr")
    assert meta["architecture"] == "gpsr" and json.loads(meta["recipe"])["loss"] == "gpsr"


def test_degan_steps_train_generator_and_discriminator_and_resume(packed, tmp_path):
    from backend.registry import get_model
    from backend.train import PatchSource, make_objective
    recipe = Recipe("degan", 4, "aerial", steps=3, batch=2, patch=32, loss="degan", gan_start=1)
    torch.manual_seed(0)
    net = get_model("degan").build(3, 4)
    obj = make_objective(recipe, net, "cpu")
    src = PatchSource(dict(np.load(packed)), ("aerial",), "train", 3)
    lr_b, hr_b = src.batch(np.random.default_rng(0), 2, 32, 4)
    d0 = {k: v.clone() for k, v in obj.disc.state_dict().items()}
    g0 = {k: v.clone() for k, v in net.state_dict().items()}
    obj.step(lr_b, hr_b, 0)                       # before gan_start: no discriminator step
    assert all(torch.equal(d0[k], v) for k, v in obj.disc.state_dict().items())
    assert any(not torch.equal(g0[k], v) for k, v in net.state_dict().items())
    obj.step(lr_b, hr_b, 1)                       # the GAN has started: the discriminator learns
    assert not torch.equal(d0["fc2.weight"], obj.disc.state_dict()["fc2.weight"])
    # gan_start 0 (the shipped aerial recipe): no adversarial phase at any step
    off = make_objective(dataclasses.replace(recipe, gan_start=0), get_model("degan").build(3, 4), "cpu")
    d0 = {k: v.clone() for k, v in off.disc.state_dict().items()}
    off.step(lr_b, hr_b, 5)
    assert all(torch.equal(d0[k], v) for k, v in off.disc.state_dict().items())
    # through the trainer: metadata says the perceptual term was off; a resumed
    # run (discriminator and both Adams from the checkpoint) equals a straight one
    straight, meta = _run(recipe, packed, tmp_path, "degan")
    assert meta["vgg19_perceptual"].startswith("off") and meta["gan_start"] == "1"
    _run(dataclasses.replace(recipe, steps=2), packed, tmp_path, "degan_resumed")
    resumed, _ = _run(recipe, packed, tmp_path, "degan_resumed")
    a, b = load_file(str(straight)), load_file(str(resumed))
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6)


def test_photometric_patches_stay_degradation_pairs(packed):
    """A band's random contrast and level go to HR and LR alike, so LR is still HR degraded."""
    from backend.resample import degrade
    from backend.train import PatchSource, photometric
    src = PatchSource(dict(np.load(packed)), ("aerial",), "train", 3)
    plain_lr, plain_hr = src.batch(np.random.default_rng(7), 6, 32, 4)
    lr, hr = src.batch(np.random.default_rng(7), 6, 32, 4, photometric_share=1.0)
    again = src.batch(np.random.default_rng(7), 6, 32, 4, photometric_share=1.0)
    assert torch.equal(lr, again[0]) and torch.equal(hr, again[1])           # seeded
    assert not torch.equal(hr[0], plain_hr[0])                                # same crop, changed
    # each band's contrast becomes a share in [0.2, 1] of what it was, and not all 1
    changed_hr, changed_lr = photometric(np.random.default_rng(3), plain_hr, plain_lr)
    ratio = changed_hr.std(dim=(2, 3)) / plain_hr.std(dim=(2, 3)).clamp_min(1e-6)
    assert torch.allclose(changed_lr.std(dim=(2, 3)) / plain_lr.std(dim=(2, 3)).clamp_min(1e-6), ratio, atol=1e-4)
    assert float(ratio.min()) >= 0.2 - 1e-4 and float(ratio.max()) <= 1 + 1e-4 and float(ratio.mean()) < 0.9
    # the LR is the degraded HR to within the Byte rounding: half a grey level, in normalised units
    half_level = 0.5 / min(min(stats.span) for _, _, stats, _ in src.images)
    assert float((degrade(hr, 4, np.float32) - lr).abs().max()) < half_level + 1e-5
    assert float((degrade(hr, 4, np.float32) - lr).abs().mean()) < half_level / 2
    # a share of 0 (the Landsat, Sentinel-2 and seed-model recipes) leaves the batch as it was
    plain_again = src.batch(np.random.default_rng(7), 6, 32, 4, photometric_share=0.0)
    assert torch.equal(plain_again[0], plain_lr)


def test_the_recipes_photometric_share_reaches_the_patches(packed, tmp_path, monkeypatch):
    from backend.train import PatchSource
    seen = []
    real = PatchSource.batch

    def spy(self, *args, **kwargs):
        seen.append(kwargs.get("photometric_share", 0.0))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(PatchSource, "batch", spy)
    _run(dataclasses.replace(TINY, steps=1, photometric=0.5), packed, tmp_path, "photometric")
    assert seen[-1] == 0.5 and seen[0] == 0.0        # training batches yes, validation patches no


@pytest.mark.parametrize("native", [False, True])
def test_training_uses_bf16_only_where_it_measured_fastest(packed, tmp_path, monkeypatch, native):
    # Emulated bf16 trains 3-12x slower than fp32, so training takes the
    # precision inference measured on the device (fake timings here).
    import backend.calibrate as calibrate_mod
    from backend.models.dganet import DGANet
    monkeypatch.setenv(calibrate_mod.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv("SUPERRES_PRECISION", raising=False)
    monkeypatch.setattr(calibrate_mod, "measure", lambda device, paths: {
        "fp32": 1.0, "fp32+cl": 1.1, "bf16": 2.0 if native else 0.3})
    seen = []
    real_forward = DGANet.forward

    def spy(self, x, *args, **kwargs):
        out = real_forward(self, x, *args, **kwargs)
        seen.append(torch.is_autocast_enabled("cpu"))
        return out

    monkeypatch.setattr(DGANet, "forward", spy)
    _, meta = _run(dataclasses.replace(TINY, steps=1), packed, tmp_path, f"precision_{native}")
    # the training step's forward pass (the validation passes run outside autocast)
    assert True in seen if native else True not in seen
    assert meta["training_precision"] == ("bf16 autocast" if native else "fp32")
