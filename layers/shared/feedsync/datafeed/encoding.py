"""Visitor ids as bytes and as text.

The rule (README, "Visitor ids outside ASCII"): feedsync keeps an id as the exact bytes of the
feed - per-file visitor streams and ``feedsync parse --pending-out`` hold those bytes, escaped
(``\\\\``, ``\\t``, ``\\n``) so one line is one id. Where text is needed (the CRM lookup, upload
files, the ledger), the bytes are read with ``FEED_ENCODING``: ``auto`` (the default) reads
valid UTF-8 as UTF-8 and anything else as ISO-8859-1 - ASCII ids (every Experience Cloud id)
are the same either way, a UTF-8 feed's ``café`` is ``café``, and a Latin-1 feed's ``café``
(byte E9, never valid UTF-8 on its own) is ``café`` too. ``utf-8`` or ``iso-8859-1`` force one.

Inside feedsync an id read from the feed is a ``str`` holding one character per byte
(ISO-8859-1 is a bijection between bytes and the first 256 code points), so sorting and
merging follow byte order.
"""

from __future__ import annotations

ENCODINGS = ("auto", "utf-8", "iso-8859-1")


def feed_bytes(visitor: str) -> bytes:
    return visitor.encode("iso-8859-1")


def visitor_text(visitor: str, encoding: str = "auto") -> str:
    """The id as text: the feed's bytes read with ``encoding``."""
    if visitor.isascii() or encoding == "iso-8859-1":
        return visitor
    raw = feed_bytes(visitor)
    if encoding == "utf-8":
        return raw.decode("utf-8", "replace")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return visitor
