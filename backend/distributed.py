"""The same tiles on a ``dask.distributed`` cluster.

The client (this process) plans the tiles, keeps the one writer and writes
the encoded tiles in order; each worker builds the engine once, reads its
own windows from the input path (which every worker must see at the same
path) and returns encoded tiles. Nothing else changes, so the output is
byte-identical to a local run.

Only plain values cross the wire, and the task itself is shipped by value
(``dask_task``), so a worker needs this ``backend`` folder on disk (``ROOT``),
not the client's package name (inside QGIS the backend is a plugin's subpackage).
"""
from __future__ import annotations

import dataclasses
import sys
import time
from collections import deque
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

from .errors import Cancelled, SuperResError
from .tiling import Progress, Tile
from .window import Window

#: The folder that holds ``backend/`` (workers import it from there).
ROOT = str(Path(__file__).resolve().parent.parent)
#: Tasks kept in flight per worker (bounds the client's memory).
IN_FLIGHT_PER_WORKER = 2

# Per worker process: engines and readers, built once per run's configuration.
_ENGINES: Dict[str, object] = {}
_READERS: Dict[str, object] = {}

def _task():
    """The worker task, registered to be pickled by value."""
    import cloudpickle
    from . import dask_task
    cloudpickle.register_pickle_by_value(dask_task)
    return dask_task.superres_tile


def config_to_plain(config) -> dict:
    """An ``EngineConfig`` as plain values (no class from the client's package)."""
    plain = dataclasses.asdict(config)
    plain["stats"] = {"low": list(config.stats.low), "span": list(config.stats.span)}
    return plain


def config_from_plain(plain: dict):
    """Inverse of ``config_to_plain``."""
    from .engine import EngineConfig
    from .normalise import BandStats
    values = dict(plain)
    values["stats"] = BandStats(tuple(plain["stats"]["low"]), tuple(plain["stats"]["span"]))
    values["nodata"] = tuple(plain["nodata"])
    return EngineConfig(**values)


def tile_to_plain(tile: Tile) -> tuple:
    """A tile as nested tuples."""
    return (tile.index, dataclasses.astuple(tile.core), dataclasses.astuple(tile.read),
            dataclasses.astuple(tile.out), tile.margin)


def tile_from_plain(plain: tuple) -> Tile:
    """Inverse of ``tile_to_plain``."""
    index, core, read, out, margin = plain
    return Tile(index, Window(*core), Window(*read), Window(*out), margin)


def worker_tile(config: dict, input_path: str, bands: List[int], tile: tuple, trim: int = 0):
    """On a worker: read ``tile``'s window from ``input_path`` and super-resolve it
    (its margin trimmed by ``trim`` where it has no nodata, as locally).

    Returns (index, encoded values, validity of the core's input pixels).
    """
    from .engine import build_engine
    from .raster_io import GdalReader, read_info
    from .tiling import read_tile, super_resolve_tile, trim_margin
    key = repr(sorted(config.items()))
    if key not in _ENGINES:
        if not _ENGINES:   # a worker process runs nothing else: keep its heap (backend.allocator)
            from .allocator import retain_for_process
            retain_for_process()
        _ENGINES.clear()
        _ENGINES[key] = build_engine(config_from_plain(config))
    reader_key = f"{input_path}|{bands}"
    if reader_key not in _READERS:
        _READERS.clear()
        _READERS[reader_key] = GdalReader(read_info(input_path), bands)
    engine = _ENGINES[key]
    t = tile_from_plain(tile)
    t, values = trim_margin(t, read_tile(_READERS[reader_key], t, t.index + 1), engine.nodata, trim)
    result = super_resolve_tile(engine, t, values)
    return t.index, result.values, result.valid


def _connect(address: str, threads: int):
    """A client on ``address``, or on a new local cluster for ``local:N``."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise SuperResError(f"Running on a Dask cluster needs dask.distributed ({exc}); "
                            "Debian: apt install python3-distributed.") from None
    if address.startswith("local:"):
        try:
            n = int(address.split(":", 1)[1])
        except ValueError:
            n = 0
        if n < 1:
            raise SuperResError(f"Dask address '{address}': use local:N with N workers, e.g. local:2.")
        if not Path(sys.executable).name.startswith("python"):
            raise SuperResError("local:N starts Python worker processes, which QGIS cannot do from "
                                "inside: start `dask scheduler` and `dask worker` and give the "
                                "scheduler's address instead.")
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               dashboard_address=None, env={"OMP_NUM_THREADS": str(threads)})
        return Client(cluster), cluster
    try:
        return Client(address, timeout="20s"), None
    except Exception as exc:   # OSError, TimeoutError, ValueError for a bad address
        raise SuperResError(f"Cannot reach the Dask scheduler at '{address}': {exc}") from None


def run_tiles_dask(address: str, config, input_path: Optional[str], bands: Sequence[int],
                   nodata: Sequence, writer, tiles: Sequence[Tile], tiling, progress=None,
                   is_cancelled: Optional[Callable[[], bool]] = None, log=None) -> None:
    """Compute ``tiles`` on the cluster at ``address`` and write them in order.

    At most ``IN_FLIGHT_PER_WORKER`` tasks per worker are outstanding, so the
    client's memory stays bounded. Cancellation is checked between results
    and cancels what is queued; a worker's error is reported with its tile.
    """
    if not input_path:
        raise SuperResError("Running on a Dask cluster needs an input file that every worker can read.")
    from .engine import available_cores
    local = address.startswith("local:")
    n_local = int(address.split(":", 1)[1]) if local and address.split(":", 1)[1].isdigit() else 1
    threads = max(1, available_cores() // max(1, n_local)) if local else 0
    config = dataclasses.replace(config, threads=threads)
    client, cluster = _connect(address, threads)
    task = _task()
    plain = config_to_plain(config)
    tracker = Progress(tiles, config.scale, progress, log)
    futures = {}
    try:
        workers = max(1, len(client.scheduler_info().get("workers", {})) or n_local)
        if log is not None:
            log(f"Dask: {workers} worker(s) at {client.scheduler.address}")
        limit = IN_FLIGHT_PER_WORKER * workers
        pending = deque(tiles)
        order = deque()
        while pending or order:
            while pending and len(order) < limit:
                tile = pending.popleft()
                futures[tile.index] = client.submit(task, ROOT, plain, input_path, list(bands),
                                                    tile_to_plain(tile), tiling.trim, pure=False)
                order.append(tile)
            tile = order[0]
            future = futures[tile.index]
            while not future.done():   # the next tile in order; a cancel is noticed meanwhile
                if is_cancelled is not None and is_cancelled():
                    raise Cancelled(f"Cancelled before tile {tile.index + 1} of {len(tiles)}.")
                time.sleep(0.02)
            if is_cancelled is not None and is_cancelled():
                raise Cancelled(f"Cancelled before tile {tile.index + 1} of {len(tiles)}.")
            try:
                _, values, valid = future.result()
            except SuperResError as exc:
                raise SuperResError(f"On a Dask worker, tile {tile.index + 1} of {len(tiles)}: {exc}") from None
            except Exception as exc:
                raise SuperResError(f"A Dask worker failed on tile {tile.index + 1} of {len(tiles)}: "
                                    f"{type(exc).__name__}: {exc}") from None
            writer.write(tile.out.scaled(config.scale), values, valid)
            order.popleft()
            del futures[tile.index]
            tracker.report([tile])
    finally:
        if futures:
            client.cancel(list(futures.values()))
        client.close()
        if cluster is not None:
            cluster.close()


