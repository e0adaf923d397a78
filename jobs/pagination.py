"""Pages of jobs whose count stops early: counting every matching job cost a scan of all of
them on every page (the whole table for staff's view of everyone's jobs: ~30 ms at 100,000)."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from django.core.paginator import Paginator

# Exact counts up to here; past it the count is a lower bound.
COUNT_LIMIT = 1000


def count_limit_for(page: str | None, page_size: int, *, last_page_strings: tuple[str, ...] = ("last",)) -> int | None:
    """How far to count for ``page``: at least past its end, so that it and the next one exist.

    None (count everything) for "last", which needs the true number of pages.
    """
    page = (page or "1").strip()
    if page in last_page_strings:
        return None
    if page.isascii() and page.isdigit() and len(page) < 10:
        return max(COUNT_LIMIT, int(page) * page_size + 1)
    return COUNT_LIMIT


class LimitedCountPaginator(Paginator):
    """A paginator whose count stops at ``count_limit`` rows (None: counts them all)."""

    def __init__(self, object_list: Any, per_page: int, *, count_limit: int | None) -> None:
        super().__init__(object_list, per_page)
        self.count_limit = count_limit

    @cached_property
    def count(self) -> int:
        if self.count_limit is None:
            return super().count
        # Without the page's ordering: any ``count_limit`` rows will do, so PostgreSQL need
        # not walk the jobs newest first, testing each, until enough of them match.
        return self.object_list.order_by()[: self.count_limit].count()

    @property
    def count_exact(self) -> bool:
        return self.count_limit is None or self.count < self.count_limit
