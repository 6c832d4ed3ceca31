"""server/memory.py: glibc's malloc arenas capped at start, and the memory freed by start-up given back.

Each check runs in a fresh interpreter, since arenas and the heap belong to the whole process.
"""

from __future__ import annotations

import gc
import os
import platform
import subprocess
import sys
import textwrap
import weakref

import pytest

from server.memory import freeze_startup_objects
from tests.live_server import REPO_ROOT

pytestmark = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's malloc only"
)

#: Prints how many malloc arenas (heaps) the process has once four threads allocated at the same time.
COUNT_ARENAS = """
import ctypes, tempfile, threading

barrier = threading.Barrier(4)

def allocate():
    barrier.wait()  # all four alive at once: none can take over an arena another one left
    blocks = [bytearray(4096) for _ in range(10)]  # past Python's small-object allocator: malloc
    barrier.wait()

threads = [threading.Thread(target=allocate) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
libc = ctypes.CDLL(None)
libc.fopen.restype = ctypes.c_void_p
with tempfile.NamedTemporaryFile("r") as report:
    stream = ctypes.c_void_p(libc.fopen(report.name.encode(), b"w"))
    libc.malloc_info(0, stream)
    libc.fclose(stream)
    print(report.read().count("<heap nr="))
"""


def run_python(code: str, **environ: str) -> list[str]:
    env = {key: value for key, value in os.environ.items() if key not in ("MALLOC_ARENA_MAX", "GLIBC_TUNABLES")}
    env.update(environ)
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.split()


def test_the_threads_share_one_arena() -> None:
    capped = run_python("from server.memory import limit_arenas\nprint(limit_arenas())\n" + COUNT_ARENAS)
    uncapped = run_python(COUNT_ARENAS)

    assert capped == ["True", "1"]
    assert int(uncapped[0]) > 1  # what the cap prevents: an arena per thread


@pytest.mark.parametrize(
    "environ", [{"MALLOC_ARENA_MAX": "3"}, {"GLIBC_TUNABLES": "glibc.malloc.arena_max=3"}], ids=["variable", "tunable"]
)
def test_an_operators_own_cap_is_kept(environ: dict[str, str]) -> None:
    found = run_python("from server.memory import limit_arenas\nprint(limit_arenas())\n" + COUNT_ARENAS, **environ)

    assert found == ["False", "3"]


def test_what_password_hashing_left_behind_is_given_back() -> None:
    """Argon2's first hash is mapped and unmapped; glibc then raises its thresholds, and the next hash's
    memory (19 MiB) stays in the heap once freed, as after the dummy hashes of server/services/passwords.py."""
    before, released, after = run_python(
        """
        from argon2 import PasswordHasher
        from server.memory import limit_arenas, release_free_memory

        def rss_mib():
            with open("/proc/self/status") as status:
                line = next(line for line in status if line.startswith("VmRSS:"))
            return int(line.split()[1]) // 1024

        limit_arenas()
        hasher = PasswordHasher(memory_cost=19456, time_cost=1, parallelism=1)
        hasher.hash("first")
        hasher.hash("second")
        before = rss_mib()
        print(before, release_free_memory(), rss_mib())
        """
    )

    assert released == "True"
    assert int(before) - int(after) >= 15


class _Node:
    def __init__(self) -> None:
        self.me = self


def test_start_up_objects_are_frozen_and_later_garbage_is_still_collected() -> None:
    try:
        frozen = freeze_startup_objects()
        assert frozen == gc.get_freeze_count() > 1000  # every object alive now, the modules among them
        node = _Node()  # a cycle made after the freeze
        gone = weakref.ref(node)
        del node
        gc.collect()
        assert gone() is None
    finally:
        gc.unfreeze()
