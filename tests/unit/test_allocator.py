"""The heap is kept during a run (a freed tile's memory is reused, not handed to the kernel) and given back after.

glibc's own counters (``mallinfo2``) show where a block lives: in its own
mapping (``hblkhd``, returned to the kernel when freed, zero-filled again on
the next use) or in the heap (``arena``, reused).
"""
import ctypes

import numpy as np
import pytest

from backend import allocator

pytestmark = pytest.mark.skipif(allocator._glibc() is None, reason="glibc's malloc only")

MIB = 1 << 20


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
                 "fordblks", "keepcost")]


def _info() -> _MallInfo2:
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _MallInfo2
    return libc.mallinfo2()


def _mapped_while_held(nbytes: int) -> int:
    """Bytes of separately mapped blocks added while a filled buffer of ``nbytes`` is held."""
    before = _info().hblkhd
    buf = np.ones(nbytes, np.uint8)
    mapped = _info().hblkhd - before
    del buf
    return mapped


def test_a_tile_sized_buffer_comes_from_the_heap_during_a_run():
    assert _mapped_while_held(64 * MIB) >= 64 * MIB          # glibc's default: its own mapping
    with allocator.retained_heap():
        assert _mapped_while_held(64 * MIB) == 0           # the heap
        assert _info().fordblks >= 64 * MIB                # and, freed, it stays there for the next
    assert _mapped_while_held(64 * MIB) >= 64 * MIB          # defaults are back after the run


def test_the_memory_goes_back_when_the_last_run_ends():
    with allocator.retained_heap():
        with allocator.retained_heap():    # two runs at once share the setting
            _mapped_while_held(128 * MIB)
        kept = _info().arena               # the other run still keeps the heap
        assert _mapped_while_held(128 * MIB) == 0
    assert kept - _info().arena >= 100 * MIB


def test_user_tuning_of_malloc_is_left_alone(monkeypatch):
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    assert allocator._glibc() is None


def test_a_run_keeps_the_heap_while_it_works():
    from backend.job import super_resolve_array
    depths = []
    super_resolve_array(np.zeros((1, 64, 64), np.uint8), 2, model="bicubic", device="cpu",
                        progress=lambda _f: depths.append(allocator._depth))
    assert depths and min(depths) >= 1
    assert allocator._depth == 0
