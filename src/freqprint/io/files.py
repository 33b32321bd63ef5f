"""Reading the small files a user names (secrets, manifests, shard indexes) without trusting them.

A path on the command line can name anything: a FIFO (an ``open`` that blocks for ever), a
character device such as ``/dev/zero`` (a ``read`` that never ends), a directory, or a regular file
far larger than the thing it claims to be.  :func:`read_small_file` opens without blocking, accepts
regular files only, and reads at most ``max_bytes + 1`` bytes, so its memory and time are bounded
by ``max_bytes`` whatever the path is.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import Any

from freqprint.errors import UnreadableFile

__all__ = ["MAX_SECRET_BYTES", "hash_file", "read_secret_file", "read_small_file", "read_small_text", "sha256_file"]

MAX_SECRET_BYTES = 64 * 2**10  # a secret is a passphrase or a key, never kilobytes more


def read_small_file(path: str | Path, max_bytes: int, what: str = "file") -> bytearray:
    """The bytes of a regular file of at most ``max_bytes``; :class:`UnreadableFile` otherwise.

    The file is opened with ``O_NONBLOCK`` (a FIFO or a device answers at once instead of
    blocking), checked to be a regular file on the open descriptor (no race with a swapped path),
    and read into one buffer of its size (a ``bytearray``: tensors can be views of it).
    """
    path = Path(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        raise UnreadableFile(f"cannot read {what} {path}: {e.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
            raise UnreadableFile(f"{what} {path} is {kind}")
        if st.st_size > max_bytes:
            raise UnreadableFile(f"{what} {path} is {st.st_size} bytes, more than the {max_bytes} such a file can be")
        buf = bytearray(st.st_size + 1)  # one byte more: a file that grew since fstat shows it
        got = 0
        with memoryview(buf) as view:
            while got < len(buf):
                try:
                    n = os.readv(fd, [view[got:]])
                except OSError as e:
                    raise UnreadableFile(f"cannot read {what} {path}: {e.strerror}") from None
                if n == 0:
                    break
                got += n
        if got > st.st_size:
            raise UnreadableFile(f"{what} {path} changed while it was read")
        del buf[got:]
        return buf
    finally:
        os.close(fd)


def read_small_text(path: str | Path, max_bytes: int, what: str = "file") -> str:
    """:func:`read_small_file` decoded as UTF-8 (a file that is not text is refused)."""
    try:
        return read_small_file(path, max_bytes, what).decode("utf-8")
    except UnicodeDecodeError:
        raise UnreadableFile(f"{what} {path} is not UTF-8 text") from None


def read_secret_file(path: str | Path) -> str:
    """The secret stored in a file (surrounding whitespace stripped); an empty one is refused."""
    secret = read_small_text(path, MAX_SECRET_BYTES, "secret file").strip()
    if not secret:
        raise UnreadableFile(f"secret file {path} is empty")
    return secret


HASH_CHUNK = 1 << 20


def hash_file(path: str | Path, h: Any) -> int:
    """Feed a file's bytes to the hash object ``h`` in 1 MiB chunks (memory stays bounded);
    returns the number of bytes read."""
    n = 0
    with open(path, "rb") as f:
        while chunk := f.read(HASH_CHUNK):
            h.update(chunk)
            n += len(chunk)
    return n


def sha256_file(path: str | Path) -> tuple[str, int]:
    """SHA-256 (hex) and size of a file; :class:`UnreadableFile` when it cannot be read."""
    h = hashlib.sha256()
    try:
        n = hash_file(path, h)
    except OSError as e:
        raise UnreadableFile(f"{path}: cannot read it to record its digest ({e.strerror or e})") from None
    return h.hexdigest(), n
