"""Cancel inside a tile: the network checks before each of its layers, not only between tiles.

Automatic tiles grew to 512-1024 px, and one such tile can take a minute on a
laptop CPU (gpsr, dganet_large, self-ensemble, band-by-band passes). Checking
only between tiles made Cancel and Ctrl-C wait for it (22-174 s measured in
issue 33). A forward pre-hook on every leaf module (each convolution,
activation, attention step) asks ``is_cancelled()`` before it runs, so a
cancel lands within one layer on one tile: the sub-tile unit whose time the
README reports per model.
"""
from __future__ import annotations

from typing import Callable, Optional

from .errors import Cancelled


def leaf_modules(net):
    """The modules of ``net`` that hold no others: where the computing happens."""
    return [m for m in net.modules() if next(m.children(), None) is None]


class watch:  # noqa: N801 - used as a context manager, like torch's no_grad
    """While active, every leaf module of ``net`` raises ``Cancelled`` first when ``is_cancelled()``.

    ``on_layer(count)``, if given, hears how many leaf modules have run, so
    a caller can report progress inside a tile. With ``net`` None or nothing
    to watch, it does nothing.
    """

    def __init__(self, net, is_cancelled: Optional[Callable[[], bool]],
                 on_layer: Optional[Callable[[int], None]] = None):
        self.net, self.is_cancelled, self.on_layer = net, is_cancelled, on_layer
        self.handles = []
        self.count = 0

    def _hook(self, module, args):
        if self.is_cancelled is not None and self.is_cancelled():
            raise Cancelled("Cancelled inside a tile.")
        self.count += 1
        if self.on_layer is not None:
            self.on_layer(self.count)

    def __enter__(self):
        if self.net is not None and (self.is_cancelled is not None or self.on_layer is not None):
            self.handles = [m.register_forward_pre_hook(self._hook) for m in leaf_modules(self.net)]
        return self

    def __exit__(self, *exc):
        for h in self.handles:
            h.remove()
        self.handles = []
        return False


def check(is_cancelled: Optional[Callable[[], bool]], where: str) -> None:
    """Raise ``Cancelled`` naming ``where`` when ``is_cancelled()`` says so (between ISE or adaptation steps)."""
    if is_cancelled is not None and is_cancelled():
        raise Cancelled(f"Cancelled {where}.")
