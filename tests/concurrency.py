"""Running the same work in several threads released at the same instant, for race tests."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import pytest
from django.db import connection

T = TypeVar("T")

# Threads writing at once: SQLite's test database would answer "database table is locked".
needs_postgresql = pytest.mark.skipif(connection.vendor != "postgresql", reason="threads writing at once need PostgreSQL")


def at_once(work: Callable[[int], T], racers: int, timeout: float = 60) -> list[T]:
    """``work(0)`` … ``work(racers - 1)``, each in its own thread, all released together.

    Returns their results in the order they finished. Each thread closes its own database
    connection. An exception in a thread is raised here (a thread cannot fail a test itself).
    """
    barrier = threading.Barrier(racers)
    results: list[T] = []
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            barrier.wait(timeout=10)
            results.append(work(n))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    if errors:
        raise errors[0]
    if len(results) != racers:
        raise TimeoutError(f"{racers - len(results)} of {racers} threads did not finish in {timeout} s")
    return results
