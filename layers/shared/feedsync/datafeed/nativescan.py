"""The native hit scanner (``native/feedscan.c``), driven through ctypes.

It classifies rows and collects visitor keys in C, at memory speed, and releases the GIL while
it runs, so inflation in another thread overlaps it. Rows whose interpreted columns contain an
escape are handed to the Python scanner one at a time, so results never depend on which path
ran. Without the compiled library (a plain ``pip install``), feedsync uses the Python scanner.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterable
from pathlib import Path

from feedsync.datafeed.hits import RowScanner
from feedsync.datafeed.visitors import (
    EXCLUDE_HIT,
    HIT_SOURCE,
    VISITOR_KEY_SEPARATOR,
    HitLayout,
    VisitorTally,
)
from feedsync.errors import CorruptFileError

LIBRARY = Path(__file__).with_name("native") / "libfeedscan.so"
_OK, _BAD_COLUMNS, _NEEDS_PYTHON, _DANGLING = 0, -1, -2, -3
_ROLE_CRM, _ROLE_EXCLUDE, _ROLE_SOURCE, _ROLE_VISITOR = 1, 2, 3, 16
_MAX_VISITOR_PARTS = 8


class _Result(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_int64)
        for name in (
            "consumed",
            "rows",
            "excluded",
            "without_visitor",
            "pending_len",
            "known_len",
            "bad_fields",
        )
    ]


_LOAD_ERROR = ""


def _load(library: Path = LIBRARY) -> ctypes.CDLL | None:
    global _LOAD_ERROR
    if os.environ.get("FEEDSYNC_SCANNER", "").lower() == "python" or not library.is_file():
        return None
    try:
        lib = ctypes.CDLL(str(library))
    except OSError as exc:  # built for another architecture or C library
        _LOAD_ERROR = str(exc)
        return None
    lib.fs_scan.restype = ctypes.c_int
    lib.fs_scan.argtypes = [
        ctypes.c_void_p,  # buf
        ctypes.c_int64,  # len
        ctypes.c_int,  # final
        ctypes.c_void_p,  # roles
        ctypes.c_int32,  # n_columns
        ctypes.c_int32,  # n_visitor
        ctypes.c_uint8,  # separator
        ctypes.c_void_p,  # pending_out
        ctypes.c_void_p,  # known_out
        ctypes.POINTER(_Result),
    ]
    lib.fs_row_end.restype = ctypes.c_int64
    lib.fs_row_end.argtypes = [ctypes.c_char_p, ctypes.c_int64, ctypes.c_int]
    return lib


_LIB = _load()
SCANNER = "native" if _LIB is not None else "python"


def available() -> bool:
    return _LIB is not None


def why_unavailable() -> str:
    if os.environ.get("FEEDSYNC_SCANNER", "").lower() == "python":
        return "FEEDSYNC_SCANNER=python"
    if _LOAD_ERROR:
        return f"the native scanner does not load here ({_LOAD_ERROR})"
    return (
        f"the native scanner is not built ({LIBRARY.name} is missing: install from a checkout "
        "with `pip install .`, which compiles it, or run `make native`)"
    )


class _Carry:
    """The start of a row that continues in the next chunk, as pieces (no quadratic joins),
    and the run of backslashes it ends with (an odd run escapes the next chunk's first byte)."""

    def __init__(self) -> None:
        self.pieces: list[bytes] = []
        self.backslashes = 0

    def add(self, piece: bytes) -> None:
        if not piece:
            return
        self.pieces.append(piece)
        trailing = len(piece) - len(piece.rstrip(b"\\"))
        self.backslashes = self.backslashes + trailing if trailing == len(piece) else trailing

    def take(self, tail: bytes) -> bytes:
        data = b"".join([*self.pieces, tail])
        self.pieces, self.backslashes = [], 0
        return data

    def row_end(self, lib: ctypes.CDLL, chunk: bytes) -> int:
        """Index just after the first newline of chunk that ends the carried row, else 0."""
        return int(lib.fs_row_end(chunk, len(chunk), self.backslashes % 2))


class NativeScan:
    """Feeds decompressed chunks through fs_scan into a VisitorTally."""

    def __init__(self, layout: HitLayout, tally: VisitorTally, source: str) -> None:
        if _LIB is None:
            raise RuntimeError(f"the native scanner is not built ({LIBRARY} is missing)")
        if len(layout.visitor_columns) > _MAX_VISITOR_PARTS:
            raise ValueError(f"at most {_MAX_VISITOR_PARTS} visitor key columns")
        self._lib = _LIB
        self.layout, self.tally, self.source = layout, tally, source
        roles = bytearray(layout.n_columns)
        index = layout.column_index
        roles[index[layout.crm_id_column]] = _ROLE_CRM
        for name, role in ((EXCLUDE_HIT, _ROLE_EXCLUDE), (HIT_SOURCE, _ROLE_SOURCE)):
            if name in index:
                roles[index[name]] = role
        for part, name in enumerate(layout.visitor_columns):
            roles[index[name]] = _ROLE_VISITOR + part
        self._roles = (ctypes.c_uint8 * len(roles)).from_buffer(roles)
        self._python = RowScanner(layout.n_columns, layout.wanted, source)
        self._out: tuple[bytearray, bytearray] = (bytearray(), bytearray())

    def run(self, chunks: Iterable[bytes]) -> None:
        carry = _Carry()
        for chunk in chunks:
            self._feed(carry, chunk)
        if carry.pieces:
            self._scan(carry.take(b""), 0, final=True)

    def _feed(self, carry: _Carry, chunk: bytes) -> None:
        """Scan chunk in place; only the row that spans the boundary is copied (the bridge).

        The bridge ends at the first newline that really ends the row (its backslash run is
        even), found without rescanning: linear however many escaped newlines the row holds.
        """
        start = 0
        if carry.pieces:
            cut = carry.row_end(self._lib, chunk)
            if cut == 0:  # no row ends in this chunk
                carry.add(chunk)
                return
            bridge = carry.take(chunk[:cut])
            done = self._scan(bridge, 0, final=False)
            if done < len(bridge):  # cannot happen with a true row end; keep it exact anyway
                carry.add(bridge[done:])
                carry.add(chunk[cut:])
                return
            start = cut
        done = self._scan(chunk, start, final=False)
        if done < len(chunk):
            carry.add(chunk[done:])

    def _scan(self, buf: bytes, pos: int, final: bool) -> int:
        """Scan complete rows of buf from pos; return where the unscanned rest begins."""
        if len(self._out[0]) < len(buf) + 16:  # keys never outgrow the rows they come from
            self._out = (bytearray(len(buf) + 16), bytearray(len(buf) + 16))
        pending, known = self._out
        pending_ptr = ctypes.addressof((ctypes.c_char * len(pending)).from_buffer(pending))
        known_ptr = ctypes.addressof((ctypes.c_char * len(known)).from_buffer(known))
        base = ctypes.cast(ctypes.c_char_p(buf), ctypes.c_void_p).value or 0
        result, tally, layout = _Result(), self.tally, self.layout
        end = len(buf)
        while pos < end:
            rc = self._lib.fs_scan(
                base + pos, end - pos, int(final), ctypes.addressof(self._roles),
                layout.n_columns, len(layout.visitor_columns), ord(VISITOR_KEY_SEPARATOR),
                pending_ptr, known_ptr, ctypes.byref(result),
            )  # fmt: skip
            tally.add_keys(
                result.rows,
                result.excluded,
                result.without_visitor,
                bytes(memoryview(pending)[: result.pending_len]),
                bytes(memoryview(known)[: result.known_len]),
            )
            pos += result.consumed
            if rc == _OK:
                break
            if rc == _NEEDS_PYTHON:  # an escape inside an interpreted column: unescape in Python
                self._python.records = tally.rows
                row = self._python.parse_row(buf, pos, final)
                if row is None:
                    break
                tally.add([row[0]])
                pos = row[1]
                continue
            if rc == _BAD_COLUMNS:
                raise CorruptFileError(
                    self.source,
                    f"row {tally.rows + 1} has {result.bad_fields} fields, "
                    f"column_headers.tsv names {layout.n_columns}",
                )
            if rc == _DANGLING:
                raise CorruptFileError(
                    self.source, f"row {tally.rows + 1}: the file ends inside a backslash escape"
                )
            raise RuntimeError(f"fs_scan returned {rc}")
        return pos
