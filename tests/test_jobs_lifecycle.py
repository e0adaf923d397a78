from __future__ import annotations


import pytest

from jobs.models import JobTransition, SyncJob
from jobs.services import TransitionNotAllowed, job_transition
from tests.concurrency import at_once, needs_postgresql
from tests.factories import JobFactory

S = SyncJob.Status


@pytest.mark.django_db
def test_a_job_walks_the_happy_path_and_records_each_step():
    job = JobFactory()
    assert job.status == S.PENDING
    for to in (S.DISPATCHING, S.QUEUED, S.RUNNING, S.SUCCEEDED):
        assert job_transition(job=job, to=to, actor="worker", reason=f"to {to}")
    job.refresh_from_db()
    assert job.status == S.SUCCEEDED
    assert job.dispatched_at and job.started_at and job.finished_at
    assert job.dispatched_at <= job.started_at <= job.finished_at
    steps = [(t.from_status, t.to_status, t.actor) for t in job.transitions.all()]
    assert steps == [
        (S.PENDING, S.DISPATCHING, "worker"),
        (S.DISPATCHING, S.QUEUED, "worker"),
        (S.QUEUED, S.RUNNING, "worker"),
        (S.RUNNING, S.SUCCEEDED, "worker"),
    ]


@pytest.mark.django_db
def test_it_stores_fields_given_with_the_transition():
    job = JobFactory(status=S.DISPATCHING)
    job_transition(job=job, to=S.QUEUED, actor="worker", github_run_id=42, github_run_url="https://github.com/o/r/actions/runs/42")
    job.refresh_from_db()
    assert (job.github_run_id, job.github_run_url) == (42, "https://github.com/o/r/actions/runs/42")


@pytest.mark.django_db
def test_a_run_seen_finished_straight_from_queued_gets_every_timestamp():
    job = JobFactory(status=S.QUEUED)
    assert job_transition(job=job, to=S.SUCCEEDED, actor="poller")
    job.refresh_from_db()
    assert job.finished_at is not None
    assert job.started_at is None  # it was never seen running; do not invent a start time


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("start", "to"),
    [
        (S.PENDING, S.SUCCEEDED),
        (S.PENDING, S.RUNNING),
        (S.QUEUED, S.PENDING),
        (S.SUCCEEDED, S.RUNNING),
        (S.FAILED, S.SUCCEEDED),
        (S.CANCELLED, S.PENDING),
        (S.ERROR, S.DISPATCHING),
        (S.RUNNING, S.ERROR),
    ],
)
def test_it_refuses_moves_the_state_machine_does_not_have(start, to):
    job = JobFactory(status=start)
    with pytest.raises(TransitionNotAllowed):
        job_transition(job=job, to=to, actor="worker")
    job.refresh_from_db()
    assert job.status == start
    assert not JobTransition.objects.filter(job=job).exists()


def test_finished_states_are_final_and_every_state_is_covered():
    assert set(SyncJob.TRANSITIONS) == set(S.values)
    for finished in SyncJob.FINISHED_STATUSES:
        assert SyncJob.TRANSITIONS[finished] == frozenset()
    assert SyncJob.ACTIVE_STATUSES | SyncJob.FINISHED_STATUSES == set(S.values)


@pytest.mark.django_db
def test_a_stale_copy_of_the_job_changes_nothing():
    job = JobFactory()
    stale = SyncJob.objects.get(pk=job.pk)
    assert job_transition(job=job, to=S.CANCELLED, actor="alice@example.com")
    assert not job_transition(job=stale, to=S.DISPATCHING, actor="worker")
    job.refresh_from_db()
    assert job.status == S.CANCELLED
    assert job.transitions.count() == 1


@needs_postgresql
@pytest.mark.django_db(transaction=True)
def test_two_workers_racing_on_one_job_only_one_wins():
    job = JobFactory()
    workers = 6
    seen = [SyncJob.objects.get(pk=job.pk) for _ in range(workers)]  # each worker saw it pending
    results = at_once(lambda n: job_transition(job=seen[n], to=S.DISPATCHING, actor="worker"), workers)
    assert sorted(results) == [False] * (workers - 1) + [True]
    assert JobTransition.objects.filter(job_id=job.pk).count() == 1
    assert SyncJob.objects.get(pk=job.pk).status == S.DISPATCHING


@pytest.mark.django_db
def test_active_and_finished_helpers():
    assert JobFactory(status=S.RUNNING).is_active
    assert JobFactory(status=S.ERROR).is_finished
