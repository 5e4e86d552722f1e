"""Command line: ``python -m backend superresolve|evaluate|models|train|train-recipes``.

Choices come from the registry. User errors print one line and exit 2;
Ctrl-C leaves no partial output and exits 130.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import List, Optional

from .errors import Cancelled, SuperResError
from .registry import MODELS, WEIGHT_SETS, markdown_table, model_names

ROOT = Path(__file__).resolve().parent.parent


def _bands(text: str) -> List[int]:
    try:
        return [int(b) for b in text.split(",") if b.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("bands are comma-separated band numbers, e.g. 1,2,3") from None


def _counts(text: str) -> List[int]:
    try:
        return [int(n) for n in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError("counts are comma-separated integers, e.g. 0,5") from None


def _writable(path: Optional[str], flag: str) -> None:
    """Refuse before any work when ``path``'s folder is missing."""
    if path and not Path(path).resolve().parent.is_dir():
        raise SuperResError(f"{flag}: the folder '{Path(path).resolve().parent}' does not exist.")


def _extent(text: str):
    try:
        vals = [float(v) for v in text.split(",")]
    except ValueError:
        vals = []
    if len(vals) != 4:
        raise argparse.ArgumentTypeError("extent is xmin,ymin,xmax,ymax in the input's CRS")
    return tuple(vals)


class _OneLineParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line, like every other error here.

    Subcommand parsers inherit the class (``add_subparsers`` uses the parent's type).
    """

    def error(self, message: str):
        """Print ``Error: message`` on stderr and exit 2 (argparse prints the whole usage)."""
        self.exit(2, f"Error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, with model choices from the registry."""
    p = _OneLineParser(prog="python -m backend", description="Raster super-resolution.")
    sub = p.add_subparsers(dest="command", required=True)

    sr = sub.add_parser("superresolve", help="super-resolve a raster file")
    sr.add_argument("input")
    sr.add_argument("output")
    sr.add_argument("--model", choices=model_names(), default="dganet")
    sr.add_argument("--scale", type=int, choices=(2, 4, 8), default=4)
    sr.add_argument("--ise", type=int, default=0, help="ISE iterations (0 disables)")
    sr.add_argument("--ise-kernel", choices=("bicubic", "bilinear"), default=None,
                    help="ISE resampling; default: the weights' training degradation")
    sr.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    sr.add_argument("--tile", type=int, default=None,
                    help="tile size in input pixels (default: chosen so margins cost at most 15%%)")
    sr.add_argument("--overlap", type=int, default=None, help="tile margin (default: the safe margin)")
    sr.add_argument("--bands", type=_bands, default=None, help="e.g. 1,2,3 (default: all)")
    sr.add_argument("--extent", type=_extent, default=None, help="xmin,ymin,xmax,ymax in the input's CRS")
    sr.add_argument("--overwrite", action="store_true", help="replace an existing output")
    sr.add_argument("--mask", action="store_true", help="add an internal mask band (255 valid, 0 nodata)")
    sr.add_argument("--weights", choices=["auto"] + [w.name for w in WEIGHT_SETS], default="auto",
                    help="weight set; auto: nearest the input's pixel size and data type")
    sr.add_argument("--self-ensemble", action="store_true",
                    help="average the network over 8 flips and rotations (8x slower)")
    sr.add_argument("--no-zero-collar", action="store_true",
                    help="never treat a zero collar as nodata when none is declared")
    sr.add_argument("--src-nodata", default="declared", metavar="declared|none|V[,V,...]",
                    help="the input's nodata, as gdalwarp -srcnodata: declared (the file's own, default), "
                         "none (every pixel is data, e.g. saturated highlights at 255), or one value for "
                         "every band or one per band (a negative one as --src-nodata=-9999); the output "
                         "declares the same")
    sr.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto",
                    help="auto: the fastest of fp32 and bf16, measured once on this machine and cached")
    sr.add_argument("--cog", action="store_true", help="write a Cloud-Optimised GeoTIFF with overviews")
    sr.add_argument("--dask", default=None, metavar="ADDRESS",
                    help="run the tiles on a dask.distributed scheduler (tcp://host:8786), "
                         "or local:N for N local worker processes")
    sr.add_argument("--adapt-steps", type=int, default=0, metavar="N",
                    help="image-specific adaptation: fine-tune the network for N steps on pairs made "
                         "from the input itself before the tiles (advanced; default 0, off)")

    ev = sub.add_parser("evaluate", help="degrade an HR raster, super-resolve it, and compare")
    ev.add_argument("hr")
    ev.add_argument("--scale", type=int, choices=(2, 4, 8), default=4)
    ev.add_argument("--models", default="bicubic,dganet")
    ev.add_argument("--ise", type=_counts, default=[0], help="comma-separated ISE iteration counts")
    ev.add_argument("--bands", type=_bands, default=None)
    ev.add_argument("--window", type=_bands, default=None, help="x,y,w,h pixel window of the HR raster")
    ev.add_argument("--lr", default=None, help="a real LR raster of the same place (instead of degrading)")
    ev.add_argument("--weights", choices=["auto"] + [w.name for w in WEIGHT_SETS], default="auto")
    ev.add_argument("--rgb", action="store_true", help="treat the three selected bands as R, G, B")
    ev.add_argument("--html", default=None, help="also write the report, with the metric definitions, as HTML")
    ev.add_argument("--csv", default=None, help="also write the table as CSV")
    ev.add_argument("--adapt-steps", type=_counts, default=[0],
                    help="comma-separated adaptation step counts for the networks, e.g. 0,150")

    sub.add_parser("models", help="list the models (markdown table)")

    tr = sub.add_parser("train", help="train one recipe")
    tr.add_argument("--model", default="dganet")
    tr.add_argument("--scale", type=int, default=4)
    tr.add_argument("--weights", choices=[w.name for w in WEIGHT_SETS], default="aerial")
    tr.add_argument("--data", default=str(ROOT / "data" / "packed.npz"))
    tr.add_argument("--out", default=None)
    tr.add_argument("--run-dir", default=None)
    tr.add_argument("--device", default="auto")
    tr.add_argument("--threads", type=int, default=None)
    tr.add_argument("--steps", type=int, default=None, help="override the recipe's steps")
    tr.add_argument("--max-minutes", type=float, default=None, help="override the recipe's wall-clock cap")
    tr.add_argument("--vgg19", default=None,
                    help="degan: VGG19 features safetensors for the perceptual term (see backend/models/vgg19.py)")
    tr.add_argument("--gan-start", type=int, default=None,
                    help="degan: first step of the adversarial term (0: none); use it with --vgg19")

    tra = sub.add_parser("train-recipes", help="replay the shipped weights' recipes")
    tra.add_argument("--model", default=None)
    tra.add_argument("--scale", type=int, default=None)
    tra.add_argument("--weights", choices=[w.name for w in WEIGHT_SETS], default=None)
    tra.add_argument("--data", default=str(ROOT / "data" / "packed.npz"))
    return p


def _progress_bar():
    """A one-line terminal progress bar, or nothing when not on a terminal."""
    if not sys.stderr.isatty():
        return None
    import time
    from .tiling import format_seconds
    start = time.perf_counter()

    def show(fraction: float) -> None:
        """Redraw the bar at ``fraction`` done, with the time left."""
        n = int(fraction * 40)
        elapsed = time.perf_counter() - start
        eta = f", {format_seconds(elapsed * (1 - fraction) / fraction)} left " if 0 < fraction < 1 else " " * 16
        sys.stderr.write(f"\r[{'#' * n}{'.' * (40 - n)}] {fraction * 100:5.1f}%{eta}")
        if fraction >= 1:
            sys.stderr.write("\n")
        sys.stderr.flush()
    return show


def _stop_on_ctrl_c() -> threading.Event:
    """Make Ctrl-C ask the run to stop before its next tile; a second one stops at once.

    A flag checked between tiles, so the run ends at a clean point, removes its
    partial output and exits 130 with one message.
    """
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        return stop  # only the main thread may set signal handlers
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        return stop  # started with Ctrl-C ignored (a shell's background job): keep it so

    def handler(_signum, _frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        print("\nInterrupted: stopping at the next layer of the network (Ctrl-C again to stop now).",
              file=sys.stderr, flush=True)
    signal.signal(signal.SIGINT, handler)
    return stop


def use_gdal_exceptions() -> None:
    """Choose GDAL's exceptions for this program, as GDAL 3.13 asks and GDAL 4 will do anyway.

    Without a choice GDAL 3.13 prints a ``FutureWarning`` on stderr beside the
    one-line errors. This is the program's own setting, so it is global; the
    backend's GDAL calls set it for themselves too (``raster_io.gdal_exceptions``).
    """
    try:
        from osgeo import gdal, osr
    except ImportError:   # reading a raster says what to install
        return
    osr.UseExceptions()   # GDAL 3.6 keeps osr's setting apart; first, so gdal's can still be undone
    gdal.UseExceptions()


@contextmanager
def _c_stderr_held():
    """Hold what C libraries print on stderr during a run; show it after, unless the run failed.

    GDAL 3.13 lets libtiff print write errors (``_tiffWriteProc: No space
    left on device.``) straight to stderr, beside the one-line error that
    says so already. Python's own output (progress, warnings, errors) still
    goes straight out. Nothing is held where stderr is no file.
    """
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):   # no stderr, or a stream without a file
        yield
        return
    sys.stderr.flush()
    real = os.dup(fd)
    held = tempfile.TemporaryFile()
    python_stderr = sys.stderr
    sys.stderr = open(real, "w", buffering=1, closefd=False, errors="backslashreplace")
    os.dup2(held.fileno(), fd)
    show = True
    try:
        yield
    except (SuperResError, Cancelled, KeyboardInterrupt):
        show = False   # the one-line message says what went wrong
        raise
    finally:
        sys.stderr.flush()
        os.dup2(real, fd)
        sys.stderr.close()
        sys.stderr = python_stderr
        os.close(real)
        if show:
            held.seek(0)
            data = held.read()
            while data:
                data = data[os.write(fd, data):]
        held.close()


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    use_gdal_exceptions()
    try:
        if args.command == "superresolve":
            from .job import SuperResolveJob, run_job
            job = SuperResolveJob(args.input, args.output, args.model, args.scale, args.ise,
                                  args.extent, args.bands, args.device, args.tile or None,
                                  args.overlap, args.ise_kernel, args.overwrite, args.mask,
                                  "off" if args.no_zero_collar else "auto", args.weights,
                                  args.self_ensemble, args.precision, args.cog, args.dask,
                                  adapt_steps=args.adapt_steps, src_nodata=args.src_nodata)
            previous = signal.getsignal(signal.SIGINT)
            stop = _stop_on_ctrl_c()
            try:
                with _c_stderr_held():
                    run_job(job, progress=_progress_bar(), is_cancelled=stop.is_set, log=print)
            except Cancelled:
                if stop.is_set():
                    raise KeyboardInterrupt from None
                raise
            finally:
                if threading.current_thread() is threading.main_thread():
                    signal.signal(signal.SIGINT, previous)
            print(f"Wrote {args.output}")
        elif args.command == "models":
            print(markdown_table())
        elif args.command == "evaluate":
            from .evaluate import evaluate_file, format_table, write_csv, write_html
            _writable(args.html, "--html")
            _writable(args.csv, "--csv")
            rows = evaluate_file(args.hr, args.scale, args.models.split(","), args.ise, args.bands,
                                 args.window, lr_path=args.lr, weights=args.weights,
                                 rgb=True if args.rgb else None, adapt=args.adapt_steps)
            print(format_table(rows))
            if args.html:
                write_html(rows, args.html, f"Super-resolution x{args.scale} on {Path(args.hr).name}")
                print(f"Wrote {args.html}")
            if args.csv:
                write_csv(rows, args.csv)
                print(f"Wrote {args.csv}")
        elif args.command == "train":
            _train_one(args)
        elif args.command == "train-recipes":
            from .recipes import RECIPES
            chosen = [r for r in RECIPES if (args.model in (None, r.model)) and (args.scale in (None, r.scale))
                      and (args.weights in (None, r.weights))]
            if not chosen:
                asked = " ".join(f"--{k} {v}" for k, v in (("model", args.model), ("scale", args.scale),
                                                          ("weights", args.weights)) if v is not None)
                raise SuperResError(f"No recipe matches {asked}. The recipes are: "
                                    f"{', '.join(r.name for r in RECIPES)} (backend/recipes.py).")
            for r in chosen:
                _train_one(argparse.Namespace(model=r.model, scale=r.scale, weights=r.weights,
                                              data=args.data, out=None, run_dir=None, device="auto",
                                              threads=None, steps=None, max_minutes=None, vgg19=None,
                                              gan_start=None))
        return 0
    except Cancelled as exc:
        print(f"Cancelled: {exc}", file=sys.stderr)
        return 130
    except SuperResError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("Interrupted: no output was written.", file=sys.stderr)
        return 130


def _train_one(args) -> None:
    import dataclasses
    from .recipes import find_recipe
    from .registry import WEIGHTS_DIR
    try:
        recipe = find_recipe(args.model, args.scale, args.weights)
    except KeyError as exc:
        raise SuperResError(f"There is {exc.args[0]}: see backend/recipes.py.") from None
    if args.steps is not None:
        recipe = dataclasses.replace(recipe, steps=args.steps)
    if args.max_minutes is not None:
        recipe = dataclasses.replace(recipe, max_minutes=args.max_minutes)
    if getattr(args, "vgg19", None):
        recipe = dataclasses.replace(recipe, vgg19=str(Path(args.vgg19).resolve()))
    if getattr(args, "gan_start", None) is not None:
        recipe = dataclasses.replace(recipe, gan_start=args.gan_start)
    if not Path(args.data).is_file():
        raise SuperResError(f"No packed training data at {args.data}: run `make data` first.")
    from .train import train
    out = args.out or str(WEIGHTS_DIR / f"{recipe.name}.safetensors")
    run_dir = args.run_dir or str(ROOT / "train_runs" / recipe.name)
    train(recipe, args.data, out, run_dir, device=args.device, threads=args.threads)


__all__ = ["main", "build_parser", "MODELS"]
