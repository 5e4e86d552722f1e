"""Training on the packed imagery, with numpy and torch only (no GDAL).

Patches are random crops of the training regions with flips and 90-degree
rotations (and, where a recipe asks, a random contrast and level per band:
``photometric``); LR patches are made by the project's degradation (antialiased
bicubic on float values, rounded and clipped to the data type) and both are
normalised exactly as inference normalises. Checkpoints (model and Adam
state, safetensors) make a run resumable.
"""
from __future__ import annotations

import csv
import json
import math
import platform
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch

from .allocator import retained_heap
from .engine import resolve_precision
from .losses import LOSSES
from .normalise import NORMALISATION, compute_stats
from .recipes import Recipe
from .registry import get_model
from .resample import degrade, torch_upsample
from .weights import save_weights


class PatchSource:
    """Normalised images of some domains, and the patches drawn from them."""

    def __init__(self, packed: Dict[str, np.ndarray], domains, part: str, bands: int):
        self.images: List[Tuple[np.ndarray, np.ndarray, Tuple[float, float], np.dtype]] = []
        for key in sorted(packed):
            domain, _stem, which = key.split("/")
            if domain not in domains or which != part:
                continue
            arr = packed[key]
            groups = [arr[:3]] if bands == 3 else [arr[i:i + 1] for i in range(arr.shape[0])]
            if bands == 3 and arr.shape[0] < 3:
                continue
            for g in groups:
                # Landsat's zero collar; 0 is Sentinel-2 L1C's nodata too
                valid = g != 0 if domain in ("landsat", "sentinel2") else np.ones(g.shape, bool)
                stats = compute_stats(g, valid, g.dtype.kind in "iu")
                self.images.append((g, valid.all(axis=0), stats, g.dtype))
        if not self.images:
            raise ValueError(f"no {part} images for domains {domains}")
        sizes = np.array([g.shape[1] * g.shape[2] for g, *_ in self.images], float)
        self.weights = sizes / sizes.sum()

    def batch(self, rng: np.random.Generator, n: int, patch: int, scale: int, augment: bool = True,
              photometric_share: float = 0.0):
        """(LR, HR) normalised float32 tensors of ``n`` fully valid patches.

        With ``augment``, a share ``photometric_share`` of them get
        ``photometric``'s random contrast and level.
        """
        hrs, lrs = [], []
        while len(hrs) < n:
            idx = rng.choice(len(self.images), p=self.weights)
            img, valid, stats, dtype = self.images[idx]
            _, h, w = img.shape
            if h < patch or w < patch:
                continue
            y, x = rng.integers(0, h - patch + 1), rng.integers(0, w - patch + 1)
            if not valid[y:y + patch, x:x + patch].all():
                continue
            crop = img[:, y:y + patch, x:x + patch].astype(np.float32)
            if augment:
                crop = np.rot90(crop, rng.integers(4), axes=(1, 2))
                if rng.integers(2):
                    crop = crop[:, :, ::-1]
            hr = torch.from_numpy(np.ascontiguousarray(crop))[None]
            lr = degrade(hr, scale, dtype)
            hr, lr = _norm(hr, stats), _norm(lr, stats)
            if augment and photometric_share and rng.random() < photometric_share:
                hr, lr = photometric(rng, hr, lr)
            hrs.append(hr)
            lrs.append(lr)
        return torch.cat(lrs), torch.cat(hrs)


def photometric(rng: np.random.Generator, hr: torch.Tensor, lr: torch.Tensor):
    """The same random contrast and level per band on a normalised (HR, LR) pair.

    Each band becomes ``a * x + b`` with ``a`` log-uniform in [0.2, 1] and
    ``b`` uniform in [0, 1 - a]: the pair stays a pair, because the
    degradation is linear. Why: percentile normalisation puts a band whose
    range is stretched by something else (Landsat's zero collar, clouds) in a
    narrow interval, and an aerial network trained only on full-contrast
    patches then adds a bias of about 1% of the range there (the 14,000-step
    CPU run lost 1.4 dB on Table C's cross-domain rows that way).
    """
    c = hr.shape[1]
    a = np.exp(rng.uniform(np.log(0.2), 0.0, c))
    b = rng.uniform(0.0, 1.0, c) * (1 - a)
    a_t = torch.tensor(a, dtype=torch.float32)[None, :, None, None]
    b_t = torch.tensor(b, dtype=torch.float32)[None, :, None, None]
    return hr * a_t + b_t, lr * a_t + b_t


def _norm(t: torch.Tensor, stats) -> torch.Tensor:
    low = torch.tensor(stats.low, dtype=torch.float32)[None, :, None, None]
    span = torch.tensor(stats.span, dtype=torch.float32)[None, :, None, None]
    return (t - low) / span


def learning_rate(recipe: Recipe, step: int) -> float:
    """Adam's learning rate at ``step`` of ``recipe``."""
    # Seed 000 (section 2.2) halves the rate every 40 epochs; our short
    # budgets see far fewer, so "constant" follows it and "cosine" holds the
    # rate until ``decay_from``, then decays it to zero at the last step.
    # "step" is seed 001's (section 3.3): the rate times 0.1 from ``decay_from``.
    if recipe.schedule == "step":
        return recipe.lr * (0.1 if step >= recipe.decay_from else 1.0)
    if recipe.schedule == "cosine":
        if step < recipe.decay_from:
            return recipe.lr
        span = max(recipe.steps - recipe.decay_from, 1)
        return recipe.lr * 0.5 * (1 + math.cos(math.pi * min((step - recipe.decay_from) / span, 1.0)))
    return recipe.lr


def psnr_norm(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR with a peak of 1 normalised unit (for validation curves only)."""
    mse = float(((a - b) ** 2).mean())
    return 10 * math.log10(1.0 / max(mse, 1e-12))


class Objective:
    """One training step of a network: its loss, optimisers and extra state.

    The plain objective applies one loss of ``LOSSES`` to the network's
    output with Adam. Subclasses add GPSR's multi-scale gradient
    supervision and DEGAN's discriminator.
    """

    def __init__(self, recipe: Recipe, net, dev: str):
        self.recipe, self.net, self.dev = recipe, net, dev
        self.opt = torch.optim.Adam(net.parameters(), lr=recipe.lr)
        # bf16 autocast trains about 2.5x faster where the device has native
        # bf16 (AVX512-BF16/AMX, recent GPUs); emulated, it is 3x (AVX512) to
        # 12x (AVX2: dganet_large x4 on a Zen 3, 22.5 against 1.9 s a step)
        # slower than fp32. So training takes inference's measured answer.
        self.bf16 = resolve_precision("auto", dev) == "bf16"

    def optimisers(self) -> Dict[str, "torch.optim.Optimizer"]:
        """Optimisers by checkpoint prefix (their rate follows the schedule)."""
        return {"adam": self.opt}

    def modules(self) -> Dict[str, "torch.nn.Module"]:
        """Trained modules besides the network, by checkpoint prefix."""
        return {}

    def metadata(self) -> Dict[str, str]:
        """What the weights' metadata should say about this objective."""
        return {}

    def autocast(self):
        """bf16 autocast where it measured fastest on the device, else a no-op (fp32)."""
        return torch.autocast(device_type=self.dev, dtype=torch.bfloat16, enabled=self.bf16)

    def step(self, lr_b, hr_b, step: int) -> float:
        """One optimisation step on a batch; returns the network's loss."""
        with self.autocast():
            sr = self.net(lr_b)
        loss = LOSSES[self.recipe.loss](sr.float(), hr_b)
        self._update(self.opt, loss)
        return float(loss.detach())

    @staticmethod
    def _update(opt, loss) -> None:
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


class GPSRObjective(Objective):
    """GPSR's L1 + 0.1 L_grad^pix + 0.001 L_SG^pix (seed 002 eq. 14-18)."""

    def step(self, lr_b, hr_b, step: int) -> float:
        """One step with the gradient branch's maps supervised at every scale."""
        from .losses import gpsr_loss
        with self.autocast():
            sr, maps = self.net(lr_b, return_gradients=True)
        loss = gpsr_loss(sr.float(), [m.float() for m in maps], hr_b)
        self._update(self.opt, loss)
        return float(loss.detach())


class DEGANObjective(Objective):
    """DEGAN's generator and discriminator steps (seed 001 sections 2.3-2.4, 3.3).

    Adam (0.9, 0.999) for both. Until ``recipe.gan_start`` (0: never) only the
    content (and perceptual) terms train the generator and the
    discriminator rests: seed 001 does not say how its GAN starts, and we
    follow SRGAN (Ledig et al. 2017), whose GAN starts from the network
    trained on the content loss. The perceptual term is on only when
    ``recipe.vgg19`` names a VGG19 weights file.
    """

    def __init__(self, recipe: Recipe, net, dev: str):
        super().__init__(recipe, net, dev)
        from .models.degan import Discriminator
        from .registry import DEGAN_DISCRIMINATOR
        self.disc = Discriminator(recipe.bands, **DEGAN_DISCRIMINATOR).to(dev)
        self.opt_d = torch.optim.Adam(self.disc.parameters(), lr=recipe.lr, betas=(0.9, 0.999))
        self.perceptual, self.vgg_note = None, "off (no VGG19 weights given)"
        if recipe.vgg19:
            from .losses import PerceptualLoss
            from .models.vgg19 import load_vgg19
            vgg, note = load_vgg19(recipe.vgg19)
            self.perceptual, self.vgg_note = PerceptualLoss(vgg.to(dev)), note["vgg19"]

    def optimisers(self):
        """The generator's Adam and the discriminator's."""
        return {"adam": self.opt, "dadam": self.opt_d}

    def modules(self):
        """The discriminator (checkpointed, not shipped)."""
        return {"disc": self.disc}

    def metadata(self):
        """Perceptual term and discriminator, for the weights file."""
        from .registry import DEGAN_DISCRIMINATOR
        return {"vgg19_perceptual": self.vgg_note, "gan_start": str(self.recipe.gan_start),
                "discriminator": json.dumps(DEGAN_DISCRIMINATOR)}

    def step(self, lr_b, hr_b, step: int) -> float:
        """A generator step, then (once the GAN has started) a discriminator step."""
        from .losses import degan_generator_loss, discriminator_loss
        gan = 0 < self.recipe.gan_start <= step
        self.disc.requires_grad_(False)
        with self.autocast():
            sr = self.net(lr_b)
            fake = self.disc(sr) if gan else None
        loss = degan_generator_loss(sr.float(), hr_b, None if fake is None else fake.float(), self.perceptual)
        self._update(self.opt, loss)
        self.disc.requires_grad_(True)
        if gan:
            with self.autocast():
                real, fake = self.disc(hr_b), self.disc(sr.detach())
            self._update(self.opt_d, discriminator_loss(real.float(), fake.float()))
        return float(loss.detach())


OBJECTIVES = {"gpsr": GPSRObjective, "degan": DEGANObjective}


def make_objective(recipe: Recipe, net, dev: str) -> Objective:
    """The objective of ``recipe.loss``: GPSR's, DEGAN's, or a plain loss."""
    return OBJECTIVES.get(recipe.loss, Objective)(recipe, net, dev)


@retained_heap()
def train(recipe: Recipe, packed_path, out_path, run_dir, log: Callable[[str], None] = print,
          device: str = "auto", threads: Optional[int] = None, val_every: int = 250) -> dict:
    """Train ``recipe`` (resuming from ``run_dir`` if a checkpoint is there).

    Writes the final weights with their metadata to ``out_path`` and returns
    that metadata. The validation curve is ``run_dir/log.csv``.
    """
    from safetensors.torch import load_file, save_file
    if threads:
        torch.set_num_threads(threads)
    dev = "cuda" if device == "auto" and torch.cuda.is_available() else ("cpu" if device == "auto" else device)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(recipe.seed)
    packed = dict(np.load(packed_path))
    train_src = PatchSource(packed, recipe.domains, "train", recipe.bands)
    val_src = PatchSource(packed, recipe.domains, "val", recipe.bands)
    val_lr, val_hr = val_src.batch(np.random.default_rng(12345), 32, recipe.patch, recipe.scale, augment=False)
    spec = get_model(recipe.model)
    # channels_last roughly halves the CPU step time of these 3x3 convs.
    net = spec.build(recipe.bands, recipe.scale).to(dev, memory_format=torch.channels_last)
    objective = make_objective(recipe, net, dev)
    step, elapsed = 0, 0.0
    init_note = "random" if not recipe.init else f"{recipe.init} (see the first run's log)"
    ckpt, state_file = run_dir / "checkpoint.safetensors", run_dir / "state.json"
    if ckpt.exists() and state_file.exists():
        state = load_file(str(ckpt))
        net.load_state_dict({k[4:]: v for k, v in state.items() if k.startswith("net.")})
        for prefix, module in objective.modules().items():
            module.load_state_dict({k[len(prefix) + 1:]: v for k, v in state.items()
                                    if k.startswith(prefix + ".")})
        for prefix, opt in objective.optimisers().items():
            _load_adam(opt, state, prefix)
        meta = json.loads(state_file.read_text())
        step, elapsed = meta["step"], meta["elapsed"]
        init_note = meta.get("initialised_from", init_note)
        log(f"resumed {recipe.name} at step {step} ({elapsed / 60:.1f} min done)")
    elif Path(out_path).is_file():
        # No checkpoint (a fresh clone): continue from the shipped weights, with
        # their recorded steps and time; Adam's moments start afresh.
        from .weights import load_weights
        meta = load_weights(out_path, recipe.model, recipe.scale, recipe.bands, net)
        step, elapsed = int(meta["steps"]), float(meta["wall_minutes"]) * 60
        init_note = meta.get("initialised_from", init_note)
        log(f"continuing {recipe.name} from {Path(out_path).name} at step {step}")
    elif recipe.init:
        from .registry import WEIGHTS_DIR
        from .weights import load_weights, read_metadata
        init_path = WEIGHTS_DIR / f"{recipe.init}.safetensors"
        if init_path.is_file():
            init_meta = read_metadata(init_path)
            grown = ""
            if init_meta.get("architecture") == recipe.model and init_meta.get("scale") != str(recipe.scale):
                fresh = transfer_from(init_path, net)
                grown = (f"; transferred from x{init_meta['scale']}: "
                         + (f"{', '.join(fresh)} at random" if fresh else "every tensor shared"))
            elif init_meta.get("architecture") == recipe.model:
                load_weights(init_path, recipe.model, recipe.scale, recipe.bands, net)
            else:
                grow_from(init_path, net)
                grown = f"; grown from {init_meta['architecture']}, the extra ResBlocks start as identities"
            init_note = (f"{recipe.init} ({init_meta.get('steps')} steps on "
                         f"{init_meta.get('training_data', '?')}; tensor_sha256 {init_meta['tensor_sha256']}{grown})")
            log(f"initialised {recipe.name} from {init_path.name}")
        else:
            init_note = f"random: {recipe.init} was not found"
            log(f"{init_path.name} not found (it is in git history): {recipe.name} starts from random weights")
    bicubic_psnr = psnr_norm(torch_upsample(val_lr, recipe.scale, "bicubic"), val_hr)
    new_log = not (run_dir / "log.csv").exists()
    logf = open(run_dir / "log.csv", "a", newline="")
    writer = csv.writer(logf)
    if new_log:
        writer.writerow(["step", "minutes", "train_loss", "val_psnr", "val_bicubic_psnr", "lr"])
    t0 = time.perf_counter() - elapsed
    running = []

    def save_checkpoint():
        """Model and Adam state (safetensors) plus step and elapsed time."""
        state = {f"net.{k}": v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
        for prefix, module in objective.modules().items():
            state.update({f"{prefix}.{k}": v.detach().cpu().contiguous() for k, v in module.state_dict().items()})
        for prefix, opt in objective.optimisers().items():
            state.update(_adam_state(opt, prefix))
        save_file(state, str(ckpt))
        state_file.write_text(json.dumps({"step": step, "elapsed": time.perf_counter() - t0,
                                          "initialised_from": init_note}))

    net.train()
    while step < recipe.steps:
        if recipe.max_minutes and (time.perf_counter() - t0) > recipe.max_minutes * 60:
            log(f"wall-clock cap of {recipe.max_minutes} min reached at step {step}")
            break
        for opt in objective.optimisers().values():
            for g in opt.param_groups:
                g["lr"] = learning_rate(recipe, step)
        lr_b, hr_b = train_src.batch(np.random.default_rng([recipe.seed, step]), recipe.batch,
                                     recipe.patch, recipe.scale, photometric_share=recipe.photometric)
        lr_b = lr_b.to(dev, memory_format=torch.channels_last)
        hr_b = hr_b.to(dev)
        # DEGAN's noise level and dropout draw from torch's generator: seeding
        # it per step keeps a resumed run equal to a straight one.
        torch.manual_seed(recipe.seed * 1_000_003 + step)
        running.append(objective.step(lr_b, hr_b, step))
        step += 1
        if step % val_every == 0 or step == recipe.steps:
            vp = validate(net, val_lr, val_hr, dev)
            minutes = (time.perf_counter() - t0) / 60
            writer.writerow([step, f"{minutes:.2f}", f"{np.mean(running):.5f}", f"{vp:.3f}",
                             f"{bicubic_psnr:.3f}", f"{learning_rate(recipe, step):.2e}"])
            logf.flush()
            log(f"{recipe.name} step {step}/{recipe.steps} {minutes:.1f} min loss {np.mean(running):.4f} "
                f"val {vp:.2f} dB (bicubic {bicubic_psnr:.2f})")
            running = []
            save_checkpoint()
    save_checkpoint()
    logf.close()
    wall = time.perf_counter() - t0
    vp = validate(net, val_lr, val_hr, dev)
    meta = {
        "architecture": recipe.model, "scale": str(recipe.scale), "bands": str(recipe.bands),
        "normalisation": NORMALISATION, "degradation": "bicubic",
        "degradation_detail": "torch interpolate bicubic antialias=True align_corners=False, "
                              "rounded and clipped to the data type",
        "training_data": ", ".join(recipe.domains) + " (train regions of data/packed.npz; "
                         "see backend/datasets.py)",
        "weights_set": recipe.weights, "initialised_from": init_note,
        "recipe": json.dumps(recipe.to_dict()), "steps": str(step), "seed": str(recipe.seed),
        "device": f"{dev} ({platform.node() or 'unknown host'}; torch {torch.__version__}"
                  + (f", {torch.cuda.get_device_name()}" if dev == "cuda" else "") + ")",
        "wall_minutes": f"{wall / 60:.1f}",
        "training_precision": "bf16 autocast" if objective.bf16 else "fp32",
        "val_psnr_norm": f"{vp:.3f}", "val_bicubic_psnr_norm": f"{bicubic_psnr:.3f}",
        **objective.metadata(),
    }
    net_cpu = {k: v.detach().float().cpu() for k, v in net.state_dict().items()}
    save_weights(out_path, net_cpu, meta)
    # The validation curve travels with the weights (committed beside them).
    Path(out_path).with_suffix(".log.csv").write_text((run_dir / "log.csv").read_text())
    log(f"saved {out_path} after {step} steps, {wall / 60:.1f} min: val {vp:.2f} dB vs bicubic {bicubic_psnr:.2f}")
    return meta


def grow_from(init_path, net) -> Dict[str, str]:
    """Start a deeper DGANet ``net`` as the same function as a shallower file.

    Every tensor of the file is copied; the ResBlocks it lacks (appended
    after its last one) get a zero second conv, so each is an identity and
    the grown network's output equals the file's network exactly at step 0
    (function-preserving growth, as Net2Net, Chen et al. 2016). Returns the
    file's metadata; raises ``SuperResError`` when the two do not nest.
    """
    from .errors import SuperResError
    from .weights import load_weights, read_metadata
    meta = read_metadata(init_path)
    small = get_model(meta["architecture"]).build(int(meta["bands"]), int(meta["scale"]))
    load_weights(init_path, meta["architecture"], int(meta["scale"]), int(meta["bands"]), small)
    src, dst = small.state_dict(), net.state_dict()
    extra = [k for k in dst if k not in src]
    misfit = [k for k in src if k not in dst or dst[k].shape != src[k].shape]
    if misfit or any(not k.startswith("body.") for k in extra) or net.num_block < small.num_block:
        raise SuperResError(f"{Path(init_path).name} cannot seed this network: "
                            f"tensors {', '.join((misfit or extra)[:4])} do not match.")
    with torch.no_grad():
        for k, v in src.items():
            dst[k].copy_(v)
        for block in list(net.body)[small.num_block:]:
            block.conv2.weight.zero_()
            block.conv2.bias.zero_()
    return meta


def transfer_from(init_path, net) -> List[str]:
    """Start ``net`` from the same architecture trained at another scale.

    Every tensor of the file whose name and shape ``net`` shares is copied
    (head, body and the upscaler stages both scales have); the rest keep
    their random initialisation. EDSR (Lim et al. 2017) starts its x3 and
    x4 networks from the x2 one this way: the body works at low resolution
    and does much the same at every scale. Returns the names left at random;
    raises ``SuperResError`` if the band count differs or no body tensor
    matches.
    """
    from .errors import SuperResError
    from .weights import load_weights, read_metadata
    meta = read_metadata(init_path)
    if int(meta["bands"]) != _net_bands(net):
        raise SuperResError(f"{Path(init_path).name} is a {meta['bands']}-band network; "
                            f"it cannot seed a {_net_bands(net)}-band one.")
    other = get_model(meta["architecture"]).build(int(meta["bands"]), int(meta["scale"]))
    load_weights(init_path, meta["architecture"], int(meta["scale"]), int(meta["bands"]), other)
    src, dst = other.state_dict(), net.state_dict()
    shared = [k for k in dst if k in src and src[k].shape == dst[k].shape]
    if not any(k.startswith("body.") for k in shared):
        raise SuperResError(f"{Path(init_path).name} cannot seed this network: no body tensor matches.")
    with torch.no_grad():
        for k in shared:
            dst[k].copy_(src[k])
    return [k for k in dst if k not in shared]


def _net_bands(net) -> int:
    """Input bands of a network: the channels of its first conv."""
    first = next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d))
    return first.in_channels


def validate(net, val_lr, val_hr, dev) -> float:
    """Validation PSNR (normalised units) of ``net`` on fixed held-out patches."""
    net.eval()
    with torch.inference_mode():
        out = torch.cat([net(val_lr[i:i + 8].to(dev, memory_format=torch.channels_last)).float().cpu() for i in range(0, len(val_lr), 8)])
    net.train()
    return psnr_norm(out, val_hr)


def _adam_state(opt, prefix: str = "adam") -> Dict[str, torch.Tensor]:
    out = {}
    for i, p in enumerate(opt.param_groups[0]["params"]):
        st = opt.state.get(p)
        if st:
            out[f"{prefix}.{i}.exp_avg"] = st["exp_avg"].detach().cpu().contiguous()
            out[f"{prefix}.{i}.exp_avg_sq"] = st["exp_avg_sq"].detach().cpu().contiguous()
            out[f"{prefix}.{i}.step"] = torch.as_tensor(st["step"], dtype=torch.float32).reshape(1).cpu()
    return out


def _load_adam(opt, state: Dict[str, torch.Tensor], prefix: str = "adam") -> None:
    for i, p in enumerate(opt.param_groups[0]["params"]):
        if f"{prefix}.{i}.exp_avg" in state:
            opt.state[p] = {"exp_avg": state[f"{prefix}.{i}.exp_avg"].to(p.device),
                            "exp_avg_sq": state[f"{prefix}.{i}.exp_avg_sq"].to(p.device),
                            "step": torch.tensor(float(state[f"{prefix}.{i}.step"][0]))}
