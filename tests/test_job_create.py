from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError

from jobs.models import SyncJob
from jobs.services import job_create, workflow_inputs
from tests.concurrency import at_once, needs_postgresql
from tests.factories import NamespaceFactory

HOST = "registry.cn-hangzhou.aliyuncs.com"


def create(owner, namespace, source, kind="copy", **kw):
    job, created = job_create(owner=owner, namespace=namespace, kind=kind, source=source, **kw)
    return job


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("source", "destination", "expected_source", "expected_destination"),
    [
        ("nginx:1.27", "", "docker.io/library/nginx:1.27", f"{HOST}/team/nginx:1.27"),
        ("nginx", "", "docker.io/library/nginx:latest", f"{HOST}/team/nginx:latest"),
        ("bitnami/redis:7.2", "", "docker.io/bitnami/redis:7.2", f"{HOST}/team/redis:7.2"),
        ("ghcr.io/owner/app:v1", "team/app2:v1", "ghcr.io/owner/app:v1", f"{HOST}/team/app2:v1"),
        ("nginx:1.27", "team/web", "docker.io/library/nginx:1.27", f"{HOST}/team/web:1.27"),
        ("nginx:1.27", f"{HOST}/team/web:stable", "docker.io/library/nginx:1.27", f"{HOST}/team/web:stable"),
        (
            "nginx:1.27@sha256:" + "a" * 64,
            "",
            "docker.io/library/nginx@sha256:" + "a" * 64,
            f"{HOST}/team/nginx:1.27",
        ),
    ],
)
def test_copy_normalises_the_source_and_derives_the_destination(alice, team_namespace, source, destination, expected_source, expected_destination):
    job = create(alice, team_namespace, source, destination=destination)
    assert (job.source, job.destination, job.status) == (expected_source, expected_destination, "pending")
    assert job.transitions.get().reason == "submitted"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("source", "destination", "field", "message"),
    [
        ("nginx:1.27\n", "", "source", "whitespace or a control character"),
        ("nginx;id", "", "source", "path component"),
        ("NGINX", "", "source", "lower case"),
        ("nginx@sha256:" + "b" * 64, "", "destination", "needs a destination with a tag"),
        ("nginx:1", "other/nginx:1", "destination", "inside the namespace"),
        ("nginx:1", "registry.cn-beijing.aliyuncs.com/team/nginx:1", "destination", "inside the namespace"),
        ("nginx:1", "team/a/b:1", "destination", "one level deep"),
        ("nginx:1", "team/nginx@sha256:" + "c" * 64, "destination", "a tag, not a digest"),
        ("nginx:1", "team/nginx:bad tag", "destination", "whitespace"),
    ],
)
def test_bad_input_says_which_field_and_saves_nothing(alice, team_namespace, source, destination, field, message):
    with pytest.raises(ValidationError) as info:
        create(alice, team_namespace, source, destination=destination)
    assert field in info.value.message_dict
    assert message in " ".join(info.value.message_dict[field])
    assert not SyncJob.objects.exists()


@pytest.mark.django_db
def test_an_outsider_cannot_push_to_the_namespace(charlie, team_namespace):
    with pytest.raises(ValidationError, match="you may not push"):
        create(charlie, team_namespace, "nginx:1")
    assert not SyncJob.objects.exists()


@pytest.mark.django_db
def test_an_inactive_namespace_takes_no_jobs(alice):
    ns = NamespaceFactory(namespace="old", members=[alice], is_active=False)
    with pytest.raises(ValidationError, match="you may not push"):
        create(alice, ns, "nginx:1")


@pytest.mark.django_db
def test_sync_goes_to_the_last_component_and_checks_filters(alice, team_namespace):
    job = create(alice, team_namespace, "bitnami/redis:7.2", kind="sync", tag_include=r"^7\.", tag_exclude="-rc")
    assert (job.source, job.destination) == ("docker.io/bitnami/redis", f"{HOST}/team/redis")
    with pytest.raises(ValidationError, match="not a valid regular expression"):
        create(alice, team_namespace, "bitnami/redis", kind="sync", tag_include="(")
    with pytest.raises(ValidationError, match="line breaks"):
        create(alice, team_namespace, "bitnami/redis", kind="sync", tag_exclude="a\nb")
    with pytest.raises(ValidationError, match="always goes to"):
        create(alice, team_namespace, "bitnami/redis", kind="sync", destination="team/other")
    with pytest.raises(ValidationError, match="apply to a sync"):
        create(alice, team_namespace, "nginx:1", tag_include="x")


@pytest.mark.django_db
def test_an_identical_active_job_is_returned_instead_of_a_second(alice, bob, team_namespace, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        first, created = job_create(owner=alice, namespace=team_namespace, kind="copy", source="nginx:1.27")
        again, created_again = job_create(owner=alice, namespace=team_namespace, kind="copy", source="docker.io/library/nginx:1.27")
    assert created and not created_again
    assert again.pk == first.pk
    assert len(callbacks) == 1  # dispatched once
    bobs, bob_created = job_create(owner=bob, namespace=team_namespace, kind="copy", source="nginx:1.27")
    assert bob_created and bobs.pk != first.pk  # nobody is handed a job that is not theirs
    SyncJob.objects.filter(pk=first.pk).update(status="succeeded")
    _, created_after_finish = job_create(owner=alice, namespace=team_namespace, kind="copy", source="nginx:1.27")
    assert created_after_finish


@pytest.mark.django_db
def test_workflow_inputs_follow_the_workflow_files(alice, team_namespace):
    team_namespace.credential_secret = "ACR_TEAM"
    team_namespace.save()
    copy = create(alice, team_namespace, "ghcr.io/owner/app:v1")
    assert workflow_inputs(copy) == {
        "source": "ghcr.io",
        "destination": HOST,
        "source_repo": "owner/app:v1",
        "destination_repo": "team/app:v1",
        "request_id": str(copy.request_id),
        "credential": "ACR_TEAM",
    }
    pinned = create(alice, team_namespace, "nginx:1@sha256:" + "d" * 64)
    assert workflow_inputs(pinned)["source_repo"] == "library/nginx@sha256:" + "d" * 64
    sync = create(alice, team_namespace, "bitnami/redis", kind="sync", tag_exclude="-rc$")
    assert workflow_inputs(sync) == {
        "source": "docker.io",
        "destination": HOST,
        "source_repo": "bitnami/redis",
        "destination_scope": "team",
        "include_tags": "",
        "exclude_tags": "-rc$",
        "request_id": str(sync.request_id),
        "credential": "ACR_TEAM",
    }


@pytest.mark.django_db
def test_retry_starts_a_new_job_with_the_same_request(alice, team_namespace):
    from jobs.services import JobActionRefused, job_delete, job_retry

    job = create(alice, team_namespace, "nginx:1@sha256:" + "e" * 64)
    with pytest.raises(JobActionRefused, match="only a failed"):
        job_retry(job=job, actor=alice)
    with pytest.raises(JobActionRefused, match="only a finished job"):
        job_delete(job=job)
    SyncJob.objects.filter(pk=job.pk).update(status="failed")
    job.refresh_from_db()
    again, created = job_retry(job=job, actor=alice)
    assert created and again.pk != job.pk
    assert (again.source, again.destination, again.status) == (job.source, job.destination, "pending")
    sync = create(alice, team_namespace, "bitnami/redis", kind="sync", tag_include="^7")
    SyncJob.objects.filter(pk=sync.pk).update(status="error")
    sync.refresh_from_db()
    sync_again, _ = job_retry(job=sync, actor=alice)
    assert (sync_again.source, sync_again.destination, sync_again.tag_include) == (sync.source, sync.destination, "^7")
    job_delete(job=job)
    assert not SyncJob.objects.filter(pk=job.pk).exists()


@pytest.mark.django_db
def test_the_repository_quota_counts_repositories_not_tags(alice, team_namespace):
    team_namespace.repository_quota = 2
    team_namespace.save()
    create(alice, team_namespace, "nginx:1")
    create(alice, team_namespace, "nginx:2")  # same repository, another tag: free
    failed = create(alice, team_namespace, "busybox:1")
    assert team_namespace.repository_count() == 2
    SyncJob.objects.filter(pk=failed.pk).update(status="failed")  # a failed copy holds nothing
    create(alice, team_namespace, "redis:7")
    with pytest.raises(ValidationError, match="is full: 2 of 2 repositories"):
        create(alice, team_namespace, "alpine:3")
    create(alice, team_namespace, "redis:8")  # still fine: redis is already there
    sync = create(alice, team_namespace, "library/nginx", kind="sync")
    assert sync.destination_repository == f"{HOST}/team/nginx"


def _race_for_the_last_place(owner, racers: int):
    """``racers`` threads each submit a job into its own new repository of a 1-repository namespace."""
    namespace = NamespaceFactory(members=[owner], repository_quota=1)

    def submit(n: int) -> tuple[str, str]:
        try:
            job, _ = job_create(owner=owner, namespace=namespace, kind="copy", source=f"image{n}:1")
        except ValidationError as exc:
            return "refused", str(exc)
        return "created", job.destination_repository

    outcomes = at_once(submit, racers)
    created = [what for outcome, what in outcomes if outcome == "created"]
    refused = [what for outcome, what in outcomes if outcome == "refused"]
    return namespace, created, refused


@needs_postgresql
@pytest.mark.django_db(transaction=True)
def test_two_jobs_racing_for_the_last_free_repository_cannot_both_take_it(alice):
    racers = 6
    for round_ in range(5):  # without the lock the race is lost in most rounds, not in every one
        namespace, created, refused = _race_for_the_last_place(alice, racers)
        assert len(created) == 1, (round_, created, refused)
        assert len(refused) == racers - 1 and all("is full: 1 of 1" in text for text in refused)
        assert namespace.repository_count() == 1


def _opposite_batches(owner, round_: int) -> tuple[Any, Any, list[Any]]:
    """4 threads at once, each submitting one job into each of two namespaces, in alternating orders."""
    from jobs.submit import Item, submit_all

    first, second = (NamespaceFactory(members=[owner]) for _ in range(2))

    def submit(n: int):
        order = [first, second] if n % 2 == 0 else [second, first]
        items = [Item(key=i, source=f"r{round_}-t{n}-{i}:1", namespace=ns) for i, ns in enumerate(order)]
        return submit_all(owner=owner, items=items)

    return first, second, at_once(submit, 4)


@needs_postgresql
@pytest.mark.django_db(transaction=True)
def test_batches_into_the_same_namespaces_in_opposite_orders_do_not_deadlock(alice):
    for round_ in range(5):  # without one locking order, most rounds deadlock (PostgreSQL aborts one)
        first, second, outcomes = _opposite_batches(alice, round_)
        assert all(outcome.submitted for outcome in outcomes), [outcome.errors for outcome in outcomes]
        assert first.repository_count() == second.repository_count() == 4
