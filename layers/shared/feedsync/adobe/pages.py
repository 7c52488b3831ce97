"""Walking paged Adobe listings to the end."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

MAX_PAGES = 10_000  # a service that never says 'last page' must not loop forever


def all_pages(fetch: Callable[[int], tuple[list[Any], bool]], first: int = 0) -> Iterator[Any]:
    """Items of ``fetch(page)`` for page = first, first+1, ... until it reports the last page."""
    for page in range(first, first + MAX_PAGES):
        items, last = fetch(page)
        yield from items
        if last or not items:
            return
    raise RuntimeError(f"gave up after {MAX_PAGES} pages")
