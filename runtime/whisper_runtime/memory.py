"""Give memory back to the system when the server goes idle.

glibc's malloc keeps freed memory in per-thread arenas (up to 8 per core) and returns it to the
system only from the top of each heap; decoding in worker threads and batched ``generate`` calls
leave RSS gigabytes above idle after a burst of long files. Capping the arenas and trimming once no
transcription is in flight bounds that by design. Elsewhere than glibc both calls are no-ops.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from typing import Optional

#: mallopt's parameter number for the arena cap (glibc malloc.h).
_M_ARENA_MAX = -8
#: Two arenas: the event loop's and one shared by the worker threads.
MAX_ARENAS = 2


def _glibc() -> Optional[ctypes.CDLL]:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


_LIBC = _glibc()


def cap_malloc_arenas(arenas: int = MAX_ARENAS) -> None:
    """Call at start-up, before threads allocate (the same as MALLOC_ARENA_MAX in the environment)."""
    if _LIBC is not None:
        _LIBC.mallopt(_M_ARENA_MAX, arenas)


def release_free_memory() -> None:
    """Return every arena's free pages to the system (takes milliseconds; run it off the event loop)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
