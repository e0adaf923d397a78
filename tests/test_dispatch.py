"""Dispatch and tracking against the GitHub emulator over real HTTP, without a worker:
the services are called directly, as a task would, and the emulator runs nothing (dry)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from emulator import pytest_fixtures
from jobs import services
from jobs.models import SyncJob
from tests.factories import JobFactory, NamespaceFactory

github_emulator = pytest_fixtures.github_emulator
ROOT = Path(__file__).resolve().parent.parent
S = SyncJob.Status


@pytest.fixture
def emulator(github_emulator, settings):
    def make(**options):
        api_version = options.pop("api_version", "2026-03-10")
        emu = github_emulator(repo_root=ROOT, **{"dry": "success", **options})
        settings.GITHUB_API_URL = emu.url
        settings.GITHUB_TOKEN = emu.token
        settings.GITHUB_REPOSITORY = emu.repository
        settings.GITHUB_API_VERSION = api_version
        return emu

    return make


@pytest.fixture
def job(db):
    namespace = NamespaceFactory(namespace="team")
    return JobFactory(namespace=namespace, destination=f"{namespace.registry}/team/nginx:1.27")


def dispatch(job) -> str:
    outcome = services.job_dispatch(job_id=job.pk)
    job.refresh_from_db()
    return outcome


def runs_of(emu, job):
    return [r for r in emu.runs if str(job.request_id) in r.display_title]


@pytest.mark.django_db
def test_dispatch_records_the_run_from_the_answer(emulator, job, django_capture_on_commit_callbacks):
    emu = emulator()
    with django_capture_on_commit_callbacks():
        assert dispatch(job) == "queued"
    (run,) = runs_of(emu, job)
    assert (job.status, job.github_run_id) == (S.QUEUED, run.id)
    assert job.github_run_url.endswith(f"/actions/runs/{run.id}")
    assert emu.request_count("dispatch", "POST") == 1
    assert dispatch(job) == "already queued"  # a second delivery of the task does nothing
    assert emu.request_count("dispatch", "POST") == 1


@pytest.mark.django_db
def test_a_server_answering_204_is_matched_by_request_id_not_by_the_newest_run(emulator, job):
    emu = emulator(force_204=True)
    other = JobFactory(namespace=job.namespace, destination=job.destination.replace("nginx", "web"))
    dispatch(job)
    dispatch(other)
    assert job.github_run_id == runs_of(emu, job)[0].id
    assert other.github_run_id == runs_of(emu, other)[0].id
    assert job.github_run_id != other.github_run_id


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda emu, settings: setattr(settings, "GITHUB_TOKEN", "wrong"), "token is invalid or expired"),
        (lambda emu, settings: setattr(settings, "GITHUB_REF", "release"), "No ref found for: release"),
        (lambda emu, settings: setattr(settings, "GITHUB_REPOSITORY", "acme/missing"), "was not found"),
    ],
)
def test_a_refused_dispatch_ends_in_error_with_an_actionable_message(emulator, job, settings, setup, message):
    emu = emulator()
    setup(emu, settings)
    assert dispatch(job) == "error"
    assert job.status == S.ERROR and message in job.error_message
    assert job.finished_at is not None and not emu.runs


@pytest.mark.django_db
def test_an_unconfigured_portal_says_so(job, settings):
    settings.GITHUB_TOKEN = ""
    assert dispatch(job) == "error"
    assert "set GITHUB_TOKEN and GITHUB_REPOSITORY" in job.error_message


@pytest.mark.django_db
def test_a_rate_limited_dispatch_waits_and_tries_again(emulator, job, django_capture_on_commit_callbacks):
    emu = emulator()
    emu.secondary_rate_limit("dispatch", retry_after=120)
    with django_capture_on_commit_callbacks() as callbacks:
        assert dispatch(job) == "retry"
    assert job.status == S.PENDING
    assert job.dispatch_after >= timezone.now() + timedelta(seconds=110)
    assert len(callbacks) == 1  # a dispatch task with a countdown, not an immediate retry
    assert dispatch(job) == "deferred"
    SyncJob.objects.filter(pk=job.pk).update(dispatch_after=timezone.now())
    assert dispatch(job) == "queued"
    assert len(runs_of(emu, job)) == 1


@pytest.mark.django_db
def test_a_worker_killed_after_posting_leaves_a_job_that_is_found_not_sent_again(emulator, job, settings):
    emu = emulator()
    emu.drop_next("dispatch", after=True)  # the run is created, the answer never arrives
    assert dispatch(job) == "unknown"
    assert job.status == S.DISPATCHING
    assert services.job_resolve_dispatch(job_id=job.pk) == "too early"  # a POST could still be in flight
    SyncJob.objects.filter(pk=job.pk).update(dispatch_started_at=timezone.now() - timedelta(minutes=2))
    assert dispatch(job) == "found"  # a redelivered task resolves instead of posting again
    assert job.status in (S.QUEUED, S.SUCCEEDED) and job.github_run_id == runs_of(emu, job)[0].id
    assert emu.request_count("dispatch", "POST") == 1 and len(runs_of(emu, job)) == 1


@pytest.mark.django_db
def test_a_dispatch_that_created_no_run_is_sent_again_once(emulator, job, settings, django_capture_on_commit_callbacks):
    emu = emulator()
    emu.drop_next("dispatch", after=False)  # dropped before the run was created
    assert dispatch(job) == "unknown"
    settings.IMAGESYNC_RUN_LIST_LAG = 0
    SyncJob.objects.filter(pk=job.pk).update(dispatch_started_at=timezone.now() - timedelta(minutes=2))
    with django_capture_on_commit_callbacks():
        assert services.job_resolve_dispatch(job_id=job.pk) == "redispatch"
    job.refresh_from_db()
    assert job.status == S.PENDING
    assert dispatch(job) == "queued"
    assert len(runs_of(emu, job)) == 1


@pytest.mark.django_db
def test_the_poller_follows_runs_with_one_list_call_and_etags(emulator, job, django_capture_on_commit_callbacks):
    emu = emulator(dry=None)
    emu.set_dry("success", duration=0.0)
    dispatch(job)
    second = JobFactory(namespace=job.namespace, destination=job.destination.replace("nginx", "web"))
    dispatch(second)
    for run_id in (job.github_run_id, second.github_run_id):
        emu.wait_for_run(run_id, timeout=30)
    etags: dict[str, str] = {}
    emu.reset_stats()
    with django_capture_on_commit_callbacks():
        changed = services.poll_workflow(workflow="copy.yml", jobs=[job, second], etag_get=etags.get, etag_set=etags.__setitem__)
    assert changed == 2
    assert emu.request_count("workflow_runs", "GET") == 1
    for j in (job, second):
        j.refresh_from_db()
        assert j.status == S.SUCCEEDED and j.github_run_number
    # Nothing changed since: once a list has been applied without news, the same list answers
    # 304, which costs nothing against the rate limit.
    for _ in range(2):
        services.poll_workflow(workflow="copy.yml", jobs=[job, second], etag_get=etags.get, etag_set=etags.__setitem__)
    assert [r.status for r in emu.request_log if r.route == "workflow_runs"][-2:] == [200, 304]


@pytest.mark.django_db
def test_the_sweeper_fails_a_job_whose_run_was_deleted(emulator, job):
    emulator()
    SyncJob.objects.filter(pk=job.pk).update(status=S.RUNNING, github_run_id=987654321)
    assert services.job_check_run(job_id=job.pk) == "run gone"
    job.refresh_from_db()
    assert job.status == S.FAILED and "no longer exists" in job.error_message


@pytest.mark.django_db
def test_cancel_before_dispatch_needs_no_github(job):
    services.job_cancel(job=job, actor="alice@example.com")
    job.refresh_from_db()
    assert job.status == S.CANCELLED
    with pytest.raises(services.JobActionRefused, match="already finished"):
        services.job_cancel(job=job, actor="alice@example.com")


@pytest.mark.django_db
def test_a_job_left_out_of_one_poll_is_not_lost_to_a_304_later(emulator, job, settings, django_capture_on_commit_callbacks):
    # Regression: the poller listed runs only for quiet jobs and kept the list's ETag, so a job
    # that had news at that moment never saw its run finish: later polls got 304.
    from jobs import tasks

    settings.IMAGESYNC_POLL_INTERVAL = 60
    emu = emulator()
    busy = JobFactory(namespace=job.namespace, destination=job.destination.replace("nginx", "web"))
    with django_capture_on_commit_callbacks():
        dispatch(job)
        dispatch(busy)
    SyncJob.objects.filter(status=S.SUCCEEDED).update(status=S.QUEUED, finished_at=None)  # dry runs end at once
    for j in (job, busy):
        emu.wait_for_run(j.github_run_id, timeout=30)
    SyncJob.objects.filter(pk=job.pk).update(updated_at=timezone.now() - timedelta(minutes=5))
    SyncJob.objects.filter(pk=busy.pk).update(updated_at=timezone.now())  # just had news
    with django_capture_on_commit_callbacks():
        tasks.poll_active_runs()
    for j in (job, busy):
        j.refresh_from_db()
        assert j.status == S.SUCCEEDED, j.pk


@pytest.mark.django_db
def test_a_304_is_trusted_only_for_the_same_jobs_in_the_same_states(emulator, job, django_capture_on_commit_callbacks):
    emu = emulator(dry=None)
    emu.set_dry("success", duration=60)
    etags: dict[str, str] = {}

    def poll(*jobs):
        with django_capture_on_commit_callbacks():
            return services.poll_workflow(workflow="copy.yml", jobs=list(jobs), etag_get=etags.get, etag_set=etags.__setitem__)

    dispatch(job)
    emu.wait_for_run(job.github_run_id, status="in_progress", timeout=30)
    assert poll(job) == 1 and job.status == S.RUNNING
    assert poll(job) == 0  # nothing new: the ETag is kept now
    emu.reset_stats()
    assert poll(job) == 0
    assert [r.status for r in emu.request_log] == [304]
    # A job whose finished run was already in the list last applied, while the job itself was
    # not among those polled (its dispatch answer was still being recorded). A 304 for the
    # same list must not hide its run.
    emu.set_dry("success", duration=0)
    late = JobFactory(namespace=job.namespace, destination=job.destination.replace("nginx", "late"))
    dispatch(late)
    SyncJob.objects.filter(pk=late.pk).update(status=S.QUEUED, finished_at=None)
    late.refresh_from_db()
    emu.wait_for_run(late.github_run_id, timeout=30)
    assert poll(job) == 0  # lists the finished run of late, changes nothing, keeps the ETag
    emu.reset_stats()
    assert poll(job, late) == 1
    assert [r.status for r in emu.request_log] == [200]
    late.refresh_from_db()
    assert late.status == S.SUCCEEDED


@pytest.mark.django_db
def test_a_304_of_page_one_is_not_trusted_when_the_list_has_more_pages(emulator, job, django_capture_on_commit_callbacks):
    # Regression (found by the benchmark): only page 1 was fetched conditionally, so with more
    # than 100 runs in the window a run on page 2 could change behind an unchanged page 1.
    emu = emulator()
    emu.set_dry("success", duration=60)
    dispatch(job)
    emu.wait_for_run(job.github_run_id, status="in_progress", timeout=30)
    emu.set_dry("success", duration=0)
    newer = [  # newer runs, finished and unchanging, push the job's run onto page 2
        emu.dispatch("copy.yml", inputs={"source_repo": f"x:{i}", "destination_repo": f"team/x:{i}"})
        for i in range(100)
    ]
    for run in newer:
        emu.wait_for_run(run.id, timeout=30)
    etags: dict[str, str] = {}

    def poll():
        with django_capture_on_commit_callbacks():
            return services.poll_workflow(workflow="copy.yml", jobs=[job], etag_get=etags.get, etag_set=etags.__setitem__)

    poll()
    job.refresh_from_db()
    assert job.status == S.RUNNING
    poll()  # nothing new
    poll()
    emu.cancel(job.github_run_id)
    emu.wait_for_run(job.github_run_id, timeout=30)
    poll()
    job.refresh_from_db()
    assert job.status == S.CANCELLED


@pytest.mark.django_db
def test_dispatches_are_paced_across_the_portal_without_sleeping(emulator, job, settings, django_capture_on_commit_callbacks):
    from django.core.cache import cache

    settings.IMAGESYNC_DISPATCH_SPACING = 1
    cache.delete(services.DISPATCH_SLOT_KEY)
    emu = emulator()
    other = JobFactory(namespace=job.namespace, destination=job.destination.replace("nginx", "web"))
    assert dispatch(job) == "queued"
    with django_capture_on_commit_callbacks() as callbacks:
        assert dispatch(other) == "paced"
    other.refresh_from_db()
    assert other.status == S.PENDING and not runs_of(emu, other)
    assert len(callbacks) == 1  # the dispatch comes back with a countdown
    cache.delete(services.DISPATCH_SLOT_KEY)  # as when its second has passed
    assert dispatch(other) == "queued"


@pytest.mark.django_db
def test_while_webhooks_arrive_the_poller_leaves_a_running_job_alone(emulator, job, settings, django_capture_on_commit_callbacks):
    from jobs import tasks
    from jobs.models import WebhookDelivery

    settings.IMAGESYNC_POLL_INTERVAL = 5
    settings.IMAGESYNC_WEBHOOK_QUIET = 300
    settings.GITHUB_WEBHOOK_SECRET = "s"
    emu = emulator(dry=None)
    emu.set_dry("success", duration=60)
    with django_capture_on_commit_callbacks():
        dispatch(job)
    SyncJob.objects.filter(pk=job.pk).update(updated_at=timezone.now() - timedelta(seconds=60))
    WebhookDelivery.objects.create(guid="g1", event="workflow_run", action="in_progress")
    emu.reset_stats()
    tasks.poll_active_runs()
    assert emu.request_count("workflow_runs") == 0  # news came a minute ago, webhooks work
    WebhookDelivery.objects.all().delete()  # no delivery for ten minutes: webhooks are down
    tasks.poll_active_runs()
    assert emu.request_count("workflow_runs") == 1
