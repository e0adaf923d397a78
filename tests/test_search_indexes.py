"""The indexes that keep the job list fast on PostgreSQL (figures: docs/benchmarks-api.md)."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from jobs import selectors
from tests.factories import JobFactory

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL indexes"),
]
TRIGRAM = ["jobs_source_upper_trgm", "jobs_destination_upper_trgm"]


def plan_of(queryset) -> str:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a test table is too small to need an index
        return queryset.explain()


def test_a_search_can_use_the_trigram_indexes(staff):
    JobFactory.create_batch(3)
    jobs = selectors.jobs_filtered(selectors.jobs_visible_to(staff), staff, everyone=True, search="NGINX")
    plan = plan_of(jobs.order_by())
    assert all(index in plan for index in TRIGRAM), plan


def test_new_jobs_enter_the_trigram_indexes_at_once():
    # With GIN's fastupdate, new entries wait in a pending list that every search reads through.
    with connection.cursor() as cursor:
        cursor.execute("SELECT relname, reloptions FROM pg_class WHERE relname = ANY(%s)", [TRIGRAM])
        options = dict(cursor.fetchall())
    assert options == {index: ["fastupdate=off"] for index in TRIGRAM}


def test_everyones_jobs_in_one_status_are_read_through_an_index(staff):
    JobFactory.create_batch(3, status="failed")
    jobs = selectors.jobs_filtered(selectors.jobs_visible_to(staff), staff, everyone=True, statuses=["failed"])
    assert "jobs_status_newest" in plan_of(jobs[:50])
