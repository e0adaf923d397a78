"""Pages of jobs whose count stops early: counting every matching job cost a scan of all of
them on every page (the whole table for staff's view of everyone's jobs: ~30 ms at 100,000)."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from django.core.paginator import EmptyPage, Page, PageNotAnInteger, Paginator

# Exact counts up to here; past it the count is a lower bound (more jobs exist).
COUNT_LIMIT = 1000


def count_limit_for(page: str | None, page_size: int, *, last_page_strings: tuple[str, ...] = ("last",)) -> int | None:
    """How far to count for ``page``: at least past its end, so that it and the next one exist.

    None (count everything) for "last", which needs the true number of pages.
    """
    page = (page or "1").strip()
    if page in last_page_strings:
        return None
    if page.isascii() and page.isdigit():
        # A page this far out cannot exist below the limit's reach: count it all and say so.
        return max(COUNT_LIMIT, int(page) * page_size + 1) if len(page) < 10 else None
    return COUNT_LIMIT


class LimitedCountPaginator(Paginator):
    """A paginator whose count stops at ``count_limit`` rows (None: counts them all)."""

    def __init__(self, object_list: Any, per_page: int, *, count_limit: int | None) -> None:
        super().__init__(object_list, per_page)
        self.count_limit = count_limit

    @cached_property
    def _counted(self) -> int:
        if self.count_limit is None:
            return super().count
        # One row past the limit tells "exactly the limit" from "more". Without the page's
        # ordering: any rows will do, so PostgreSQL need not walk the jobs newest first,
        # testing each, until enough of them match.
        return self.object_list.order_by()[: self.count_limit + 1].count()

    @property
    def count(self) -> int:
        return self._counted if self.count_exact else self.count_limit  # type: ignore[return-value]

    @property
    def count_exact(self) -> bool:
        return self.count_limit is None or self._counted <= self.count_limit

    def get_page(self, number: Any) -> Page:
        """As Django's, but a page number below 1 gives the first page, not the last counted one
        (which, past the limit, is not the last one)."""
        try:
            return self.page(self.validate_number(number))
        except PageNotAnInteger:
            return self.page(1)
        except EmptyPage:
            below_one = str(number).strip().lstrip("-").isdigit() and int(number) < 1
            return self.page(1 if below_one else self.num_pages)
