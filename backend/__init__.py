"""Raster Super-Resolution backend: models, tiling, raster I/O, ISE and CLI.

This package never imports QGIS. It takes plain arrays and paths, and plain
callables for progress and cancellation.
"""

__all__ = ["SuperResolveJob", "run_job", "super_resolve_array"]


def __getattr__(name):
    # Lazy, so importing the package stays cheap for the plugin's start-up.
    if name in __all__:
        from . import job
        return getattr(job, name)
    raise AttributeError(name)
