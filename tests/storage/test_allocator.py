"""Freed memory kept in the process (iotdb_core.storage.allocator), observed through glibc's own accounting."""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap

import pytest

from iotdb_core.config import default_settings
from iotdb_core.storage import Engine, allocator

#: A child process allocates and frees a 24 MiB block (below the mmap threshold, above glibc's default trim
#: threshold) and prints how much freed memory its heap still holds (``mallinfo2().fordblks``).
_PROBE = textwrap.dedent(
    """
    import ctypes, sys
    from iotdb_core.storage import allocator

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in
                    ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
                     "fordblks", "keepcost")]

    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = MallInfo2
    print(allocator.keep_freed_memory(int(sys.argv[1])))
    block = ctypes.create_string_buffer(24 * 1024 * 1024)
    ctypes.memset(block, 1, len(block))
    del block
    print(libc.mallinfo2().fordblks)
    """
)


def _freed_bytes_kept(limit: int) -> tuple[str, int]:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, str(limit)], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    return out[0], int(out[1])


@pytest.fixture(scope="module")
def glibc() -> None:
    if platform.libc_ver()[0] != "glibc":
        pytest.skip("the allocator is tuned on glibc only")


def test_freed_block_stays_in_the_heap(glibc: None) -> None:
    applied, kept = _freed_bytes_kept(256 * 1024 * 1024)
    assert applied == "True"
    assert kept >= 24 * 1024 * 1024


def test_limit_zero_leaves_glibc_defaults(glibc: None) -> None:
    applied, kept = _freed_bytes_kept(0)
    assert applied == "True"
    assert kept < 24 * 1024 * 1024  # glibc maps a block this large and unmaps it when freed


def test_limit_only_grows(glibc: None) -> None:
    assert allocator.keep_freed_memory(64 * 1024 * 1024)
    before = allocator.kept_limit()
    assert before >= 64 * 1024 * 1024
    assert allocator.keep_freed_memory(1024 * 1024)
    assert allocator.kept_limit() == before


def test_engine_open_applies_the_setting(tmp_path, glibc: None) -> None:
    limit = 300 * 1024 * 1024
    with Engine.open(tmp_path / "data", default_settings().replace(allocator_keep_freed_in_byte=limit)):
        assert allocator.kept_limit() >= limit
