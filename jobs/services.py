"""What happens to jobs. Views, the API, commands and tasks call these; they hold no rules."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from jobs.models import JobTransition, SyncJob

Status = SyncJob.Status

# The timestamp a job gets when it first enters a status.
_STAMPS = {
    Status.QUEUED: "dispatched_at",
    Status.RUNNING: "started_at",
    Status.SUCCEEDED: "finished_at",
    Status.FAILED: "finished_at",
    Status.CANCELLED: "finished_at",
    Status.ERROR: "finished_at",
}


class TransitionNotAllowed(ValueError):
    """The state machine has no such move (a bug in the caller, not a race)."""


def job_transition(
    *,
    job: SyncJob,
    to: str,
    actor: str,
    reason: str = "",
    **fields: Any,
) -> bool:
    """Move ``job`` from the status it has in memory to ``to``, if nobody moved it first.

    The update is conditional on the status the caller saw, so two workers racing on the same
    job cannot both win: the loser gets False and changes nothing. On success the history row
    is written in the same transaction and ``job`` is updated in memory.
    """
    from_status = job.status
    if not SyncJob.can_move(from_status, to):
        raise TransitionNotAllowed(f"a job cannot go from {from_status} to {to}")
    now = timezone.now()
    changes: dict[str, Any] = {"status": to, "updated_at": now, **fields}
    stamp = _STAMPS.get(to)
    if stamp and getattr(job, stamp) is None and stamp not in fields:
        changes[stamp] = now
    if to == Status.RUNNING and job.dispatched_at is None and "dispatched_at" not in fields:
        changes["dispatched_at"] = now
    with transaction.atomic():
        moved = SyncJob.objects.filter(pk=job.pk, status=from_status).update(**changes)
        if not moved:
            return False
        JobTransition.objects.create(
            job=job, from_status=from_status, to_status=to, actor=actor[:100], reason=reason
        )
    for name, value in changes.items():
        setattr(job, name, value)
    return True
