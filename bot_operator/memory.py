"""Keep the operator's resident memory near what it uses (glibc only; elsewhere these do nothing).

Python's large objects come from glibc malloc, which gives each thread that allocates its own arena (up to 8 per
core) and keeps freed pages: after a burst of parallel reconciles, RSS stays at the burst's high-water mark.
Two arenas and a trim after each full pass keep it near the live heap (`make bench-fleet` measures it).
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_ARENA_MAX = -8  # glibc's mallopt parameter


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt  # noqa: B018  (musl and others have no mallopt/malloc_trim)
        libc.malloc_trim  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


LIBC = _libc()


def limit_arenas(arenas: int = 2) -> None:
    """Before the threads start: they share `arenas` arenas instead of one each."""
    if LIBC is not None:
        LIBC.mallopt(M_ARENA_MAX, arenas)


def trim() -> None:
    """Give freed heap pages back to the kernel."""
    if LIBC is not None:
        LIBC.malloc_trim(0)
