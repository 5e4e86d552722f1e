"""Continue the shipped weights on a lent GPU machine (the `device` tool), in one prepared call.

The GPU machine has torch and numpy but no GDAL, and a call carries at most
64 MiB, so the training pixels travel as one compressed file:

    here:   .venv/bin/python tools/gpu_train.py pack aerial      (or: pack aerial landsat)
    there:  run(command="python3 tools/gpu_train.py train --minutes 4 dganet:4:aerial dganet:2:aerial",
                carry=["data/gpu_packed.npz"], timeout_s=600)
    here:   copy the returned *.safetensors and *.log.csv into resources/weights/, set each
            recipe in backend/recipes.py to the steps and decay its file records, then
            `make evaluate` and `make docs`.

Each file continues from the shipped one (its steps and wall time carry on;
Adam, and DEGAN's discriminator, start afresh), or, when none is shipped,
from the recipe's ``init`` file (random weights without one), or from random
weights with ``--scratch``. The rate is held for the first half of the new steps and
decayed to zero over the second half; the number of new steps is sized from a
short timing run so that the decay ends inside the budget (or given with
``--steps``: no timing run and no wall-clock cap, the same steps on any machine). The metadata
records the device (with the GPU's name), the steps and the recipe.
"""
import argparse
import dataclasses
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
GPU_PACK = ROOT / "data" / "gpu_packed.npz"


def pack(domains) -> None:
    """Write data/gpu_packed.npz: the ``domains`` of data/packed.npz, compressed (small enough to carry)."""
    src = ROOT / "data" / "packed.npz"
    if not src.is_file():
        sys.exit("No data/packed.npz: run `make data` first.")
    packed = np.load(src)
    arrays = {k: packed[k] for k in packed.files if k.split("/")[0] in domains}
    np.savez_compressed(GPU_PACK, **arrays)
    print(f"wrote {GPU_PACK} ({GPU_PACK.stat().st_size / 2 ** 20:.1f} MiB)")


def seconds_per_step(recipe, device: str) -> float:
    """Mean seconds of one training step of ``recipe`` on ``device`` (random data).

    The step is the recipe's own objective (``backend.train.make_objective``):
    GPSR's gradient maps, DEGAN's generator and discriminator steps.
    """
    import torch
    from backend.registry import get_model
    from backend.train import make_objective
    net = get_model(recipe.model).build(recipe.bands, recipe.scale).to(device, memory_format=torch.channels_last)
    objective = make_objective(recipe, net, device)
    lr_side = recipe.patch // recipe.scale
    x = torch.rand(recipe.batch, recipe.bands, lr_side, lr_side, device=device).to(memory_format=torch.channels_last)
    y = torch.rand(recipe.batch, recipe.bands, recipe.patch, recipe.patch, device=device)
    times = []
    for i in range(25):
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        objective.step(x, y, recipe.gan_start + i)      # past gan_start: DEGAN's discriminator runs too
        if device == "cuda":
            torch.cuda.synchronize()
        if i >= 5:
            times.append(time.perf_counter() - t)
    # The real loop also draws patches on the CPU and validates: allow for it.
    return 1.5 * float(np.mean(times))


def steps_in(minutes: float, step_seconds: float, name: str) -> int:
    """New steps of ``step_seconds`` each that fit in ``minutes``; SystemExit if not even one does."""
    new = int(minutes * 60 / step_seconds)
    if new < 1:
        raise SystemExit(f"{name}: --minutes {minutes:g} is shorter than one training step here "
                         f"({step_seconds:.1f} s with its allowance); give more minutes or --steps.")
    return new


def train(targets, minutes: float, out_dir: Path, batch: int = 0, scratch: bool = False,
          steps: int = 0) -> None:
    """Continue each ``model:scale:weights`` target for ``minutes`` on the GPU (or CPU).

    ``batch`` overrides the recipe's batch size (a GPU has room for more);
    ``scratch`` starts from random weights even where a file is shipped;
    ``steps`` trains exactly that many new steps instead (``minutes`` is then unused).
    The run folder (checkpoint, log) lives in ``out_dir``, so a call killed
    by its time limit still brings back what was trained.
    """
    import torch
    from backend.recipes import find_recipe
    from backend.registry import get_model
    from backend.train import train as run_training
    from backend.weights import read_metadata
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"device {device}" + (f" ({torch.cuda.get_device_name()})" if device == "cuda" else ""), flush=True)
    for target in targets:
        model, scale, weights = target.split(":")
        recipe = find_recipe(model, int(scale), weights)
        if batch:
            recipe = dataclasses.replace(recipe, batch=batch)
        if scratch:
            recipe = dataclasses.replace(recipe, init="")
        shipped = get_model(model).weights_path(recipe.scale, weights)
        out = out_dir / shipped.name
        done, wall = 0, 0.0
        if shipped.is_file() and not scratch:
            done = int(read_metadata(shipped)["steps"])
            wall = float(read_metadata(shipped)["wall_minutes"])
            shutil.copy(shipped, out)
        new = steps or steps_in(minutes, seconds_per_step(recipe, device), recipe.name)
        # The cap guards the call's time limit if the timing run was optimistic
        # (the file is written only at the end); it counts the shipped file's minutes too.
        # A step count needs none: it ends the run on its own.
        # DEGAN keeps seed 001's step decay (x0.1), the others decay by a cosine.
        recipe = dataclasses.replace(recipe, steps=done + new, decay_from=done + new // 2,
                                     schedule="step" if recipe.schedule == "step" else "cosine",
                                     max_minutes=0.0 if steps else wall + 1.5 * minutes)
        print(f"{recipe.name}: {done} -> {recipe.steps} steps", flush=True)
        # A fresh run folder: a checkpoint left by an earlier call would be resumed instead.
        # Under $OUT, so a call killed by its time limit still brings the checkpoint back.
        run_dir = tempfile.mkdtemp(prefix=f"run_{recipe.name}_", dir=out_dir)
        run_training(recipe, GPU_PACK, out, run_dir, device=device, val_every=max(new // 8, 50))
        shutil.rmtree(run_dir)   # the weights are saved: only 8 files come back from a call


def main() -> None:
    """Command line: ``pack`` here, ``train`` there."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    pk = sub.add_parser("pack", help="write data/gpu_packed.npz (run here)")
    pk.add_argument("domains", nargs="*", default=["aerial"], help="domains to pack (default: aerial)")
    t = sub.add_parser("train", help="continue shipped files (run on the GPU machine)")
    t.add_argument("targets", nargs="+", help="model:scale:weights, e.g. dganet:4:aerial")
    t.add_argument("--minutes", type=float, default=4.0, help="training minutes per file")
    t.add_argument("--steps", type=int, default=0,
                   help="new steps per file instead of --minutes (no timing run, no wall-clock cap)")
    t.add_argument("--batch", type=int, default=0, help="batch size (default: the recipe's)")
    t.add_argument("--scratch", action="store_true", help="start from random weights, not the shipped file")
    args = p.parse_args()
    if args.command == "pack":
        pack(args.domains)
    else:
        out_dir = Path(os.environ.get("OUT", ROOT / "train_runs" / "gpu_out"))
        out_dir.mkdir(parents=True, exist_ok=True)
        if args.steps < 0:
            p.error("--steps must be 0 or more")
        train(args.targets, args.minutes, out_dir, args.batch, args.scratch, args.steps)


if __name__ == "__main__":
    main()
