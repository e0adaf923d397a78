"""The job serializers build their answer by hand for speed; it must stay what DRF would build
from the declared fields (the OpenAPI schema is made from those)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.utils import timezone
from rest_framework import serializers

from jobs.api.serializers import JobCreatedSerializer, JobDetailSerializer, JobSerializer
from jobs.models import JobTransition, SyncJob
from tests.factories import JobFactory, NamespaceFactory

pytestmark = pytest.mark.django_db

AT = datetime(2026, 11, 28, 3, 4, 5, 123456, tzinfo=UTC)


def drf_walk(serializer: serializers.Serializer, job: SyncJob) -> dict:
    """What DRF's generic Serializer.to_representation makes of ``job`` from the declared fields."""
    return serializers.Serializer.to_representation(serializer, job)


def jobs_in_every_shape() -> list[SyncJob]:
    ns = NamespaceFactory(registry="localhost:5000", namespace="lab")
    pending = JobFactory(namespace=ns)
    running = JobFactory(
        namespace=ns,
        source="ghcr.io/acme/app:v1",
        destination="localhost:5000/lab/app:v1",
        status="running",
        github_run_id=2**40,
        github_run_url="https://github.com/acme/imagesync/actions/runs/1",
        dispatched_at=AT,
        started_at=AT,
        cancel_requested_at=AT,
    )
    failed_sync = JobFactory(
        namespace=ns,
        kind="sync",
        source="docker.io/bitnami/redis",
        destination="localhost:5000/lab/redis",
        tag_include="^7",
        tag_exclude="-rc",
        status="failed",
        conclusion="failure",
        error_message="copy failed: 长 message with\nnewline",
        failed_step="Sync tags",
        log_excerpt="line 1\nline 2",
        result={"copied": [{"tag": "7.0", "digest": "sha256:" + "a" * 64}], "failed": [{"tag": "7.1", "reason": "x"}]},
        finished_at=AT,
    )
    JobTransition.objects.create(job=failed_sync, from_status="running", to_status="failed", actor="webhook")
    orphan = JobFactory(namespace=ns, owner=None, status="succeeded")  # its owner's account was deleted
    return [pending, running, failed_sync, orphan]


@pytest.mark.parametrize("zone", ["UTC", "Asia/Shanghai"])  # UTC is shown as Z, others with their offset
@pytest.mark.parametrize("serializer_class", [JobSerializer, JobDetailSerializer, JobCreatedSerializer])
def test_the_hand_built_answer_is_what_drf_builds_from_the_declared_fields(serializer_class, zone):
    with timezone.override(zone):  # datetimes are shown in the current time zone, as DRF does
        for job in jobs_in_every_shape():
            job = SyncJob.objects.select_related("namespace", "owner").get(pk=job.pk)
            job.deduplicated = job.status == "pending"
            serializer = serializer_class()
            fast = serializer.to_representation(job)
            generic = drf_walk(serializer_class(), job)
            assert list(fast) == list(generic), job  # same fields, in the declared order
            assert fast == generic, job
