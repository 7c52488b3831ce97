"""Exceptions shared across feedsync.

Every error names the thing that failed (a file, a line, a setting) so an operator can act on
it without reading code. None of them ever carries a secret.
"""

from __future__ import annotations


class FeedsyncError(Exception):
    """Base class for every error feedsync raises on purpose."""


class ConfigError(FeedsyncError):
    """A setting is missing or invalid; the message names the setting."""


class FeedError(FeedsyncError):
    """Something is wrong with a data feed delivery (a file, the manifest, the lookup archive)."""

    def __init__(self, file: str, message: str) -> None:
        super().__init__(f"{file}: {message}")
        self.file = file
        self.reason = message


class FeedNameError(FeedError):
    """A file name does not follow Adobe's data feed naming."""


class ManifestError(FeedError):
    """The manifest is malformed."""


class CorruptFileError(FeedError):
    """A file cannot be decompressed or parsed (truncated gzip, bad escape, wrong column count)."""


class IntegrityError(FeedError):
    """A file does not match its manifest entry (digest, size, record count) or is missing."""


class ColumnError(FeedError):
    """A configured column is not in the delivery's column_headers.tsv."""
