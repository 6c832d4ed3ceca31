"""The process's resident memory on glibc (Linux): one malloc arena, and the start-up's freed pages returned.

glibc gives a thread that allocates an arena of its own (up to 8 per core), and memory freed in an
arena stays with the process. Argon2 allocates its whole memory cost (19 MiB by default) per hash;
once glibc has seen such a block freed it raises its mmap and trim thresholds, so later hashes come
from an arena and, freed, stay resident there: the dummy hash in the main thread at start and the
bootstrap's hash in a hashing thread left ~38 MiB behind in a process that serves no login.

So `python -m server` (and each worker, server/workers.py) first caps the arenas at one, unless the
operator set MALLOC_ARENA_MAX (or glibc.malloc.arena_max in GLIBC_TUNABLES); and the lifespan, once
migrations and the bootstrap are done, collects garbage and calls `malloc_trim(0)` to give the free
pages back. One, not two: `malloc_trim` never shrinks the top of a thread's arena, which is where a
hashing thread's freed 19 MiB sit (20 MB more at start and with 100,000 cached sessions). The threads
share the arena's lock, but Python allocates under the GIL anyway: bench/run.py showed no change in
CPU per request, cached, uncached on SQLite (its own thread) or login (bench/README.md, "Scale").
A hashing buffer is still reused once a login ran: mapping 19 MiB afresh for each hash would cost
about half a hash more CPU.

Elsewhere (musl, macOS, Windows) both are no-ops.
"""

from __future__ import annotations

import ctypes
import gc
import os
import platform
from collections.abc import Mapping

#: mallopt's parameter number for the arena cap (glibc's malloc.h)
M_ARENA_MAX = -8
#: every thread allocates from the main arena, which malloc_trim can shrink
ARENAS = 1


def _glibc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL(None)  # the C library the interpreter runs on
    except OSError:
        return None


def limit_arenas(environ: Mapping[str, str] = os.environ) -> bool:
    """Cap glibc's malloc arenas at ARENAS, early at start (before threads allocate); whether it was applied.

    Not applied where the operator chose a cap, nor off glibc."""
    if "MALLOC_ARENA_MAX" in environ or "glibc.malloc.arena_max" in environ.get("GLIBC_TUNABLES", ""):
        return False
    libc = _glibc()
    mallopt = getattr(libc, "mallopt", None)
    return mallopt is not None and mallopt(M_ARENA_MAX, ARENAS) == 1


def release_free_memory() -> bool:
    """Collect garbage, then hand the arenas' free pages back to the system; whether glibc released any."""
    gc.collect()
    malloc_trim = getattr(_glibc(), "malloc_trim", None)
    return malloc_trim is not None and malloc_trim(0) == 1


def freeze_startup_objects() -> int:
    """Leave what start-up made (modules, the schema, its compiled types) out of every later garbage
    collection; how many objects that is. Called by the serving process once its app is built.

    They live as long as the process, yet a full collection walks all of them: ~80,000 objects once
    the app is built, a pass of tens of milliseconds that, during traffic, holds the event loop in the
    middle of whatever requests are waiting. Frozen, a full collection walks only what was made since.
    Garbage is collected first, so nothing frozen is garbage already.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
