"""Streaming reads of ``.npz`` members, stored or deflated, without unpickling and without loading
a large member whole.

An ``.npz`` is a zip archive of ``.npy`` files (``np.savez`` stores them, ``np.savez_compressed``
deflates them). :class:`NpzFile` opens a member as a stream (``zipfile`` inflates it on the fly),
parses its header with ``np.lib.format.read_magic`` / ``read_array_header_*`` and then reads rows
in chunks, so a 12.7 GB member converts in bounded memory. An object array (whose data is a
pickle) is refused, never loaded; small arrays are read with ``allow_pickle=False``.

Every failure (not a zip, truncated, a CRC error, a missing member, an object array) is a one-line
:class:`~disentune.errors.UserError` naming the file.
"""

from __future__ import annotations

import contextlib
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator

import numpy as np

from disentune.errors import UserError

# what a damaged or truncated archive raises while it is read
READ_ERRORS = (OSError, EOFError, zipfile.BadZipFile, zlib.error, ValueError)


@contextlib.contextmanager
def reading(label: str, what: str = "truncated or corrupt") -> Iterator[None]:
    """Turn the read errors of a damaged file into one line naming ``label``."""
    try:
        yield
    except UserError:
        raise
    except READ_ERRORS as err:
        detail = str(err).splitlines()[0][:160] if str(err) else type(err).__name__
        raise UserError(f"{label}: {what} ({detail})") from None


@dataclass(frozen=True)
class Member:
    """The header of one array in an npz: shape, dtype, memory order."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    fortran_order: bool


class NpzFile:
    """An npz archive at ``path``; ``label`` (the user's URI) names it in every message."""

    def __init__(self, path: Path, label: str) -> None:
        self.label = label
        with reading(label, "not a readable .npz (zip) file; truncated or corrupt"):
            self._zip = zipfile.ZipFile(path)
        self.names = tuple(n[:-4] for n in self._zip.namelist() if n.endswith(".npy"))

    def close(self) -> None:
        self._zip.close()

    def __enter__(self) -> NpzFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open(self, name: str) -> tuple[IO[bytes], Member]:
        if name not in self.names:
            have = ", ".join(self.names) or "no arrays"
            raise UserError(f"{self.label}: no array {name!r} (it has {have})")
        with reading(self.label):
            f = self._zip.open(name + ".npy")
            version = np.lib.format.read_magic(f)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, fortran_order, dtype = read_header(f)
        member = Member(name, tuple(int(s) for s in shape), np.dtype(dtype), bool(fortran_order))
        if member.dtype.hasobject:
            f.close()
            raise UserError(f"{self.label}: array {name!r} is an object array whose data would need "
                            "unpickling; refused (save it as a plain numeric array)")
        return f, member

    def member(self, name: str) -> Member:
        f, member = self._open(name)
        f.close()
        return member

    def read(self, name: str) -> np.ndarray:
        """A small array whole (``allow_pickle=False``)."""
        self._open(name)[0].close()  # the checks: present, not an object array
        with reading(self.label), self._zip.open(name + ".npy") as f:
            return np.lib.format.read_array(f, allow_pickle=False)

    def iter_rows(self, name: str, rows: int) -> Iterator[np.ndarray]:
        """The array's rows in order, ``rows`` at a time: arrays ``(<= rows, *shape[1:])``."""
        f, member = self._open(name)
        if member.fortran_order and len(member.shape) > 1:
            f.close()
            raise UserError(f"{self.label}: array {name!r} is stored in Fortran order, which cannot "
                            "be streamed; save it in C order")
        row_bytes = int(np.prod(member.shape[1:], dtype=np.int64)) * member.dtype.itemsize
        with f, reading(self.label):
            for start in range(0, member.shape[0], rows):
                n = min(rows, member.shape[0] - start)
                buf = f.read(n * row_bytes)
                if len(buf) != n * row_bytes:
                    raise UserError(f"{self.label}: array {name!r} is truncated after row "
                                    f"{start + len(buf) // max(row_bytes, 1)} of {member.shape[0]}")
                yield np.frombuffer(buf, dtype=member.dtype).reshape((n, *member.shape[1:]))
