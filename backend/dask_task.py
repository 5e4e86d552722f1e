"""The task a Dask worker runs, shipped by value (see ``distributed.run_tiles_dask``).

This module is registered with cloudpickle to travel by value, so a worker
needs only the ``backend`` folder on disk at ``root``, not the client's
package name (inside QGIS the backend is a plugin's subpackage).
"""


def superres_tile(root, config, input_path, bands, tile, trim):
    """Run one tile on a worker: import the backend from ``root``, then compute."""
    import sys
    if root not in sys.path:
        sys.path.insert(0, root)
    from backend.distributed import worker_tile
    return worker_tile(config, input_path, bands, tile, trim)
