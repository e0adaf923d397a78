"""Submitting many images at once (an ``images.txt`` pasted into the portal): all or nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from jobs.models import SyncJob, TargetNamespace
from jobs.services import destination_clash, job_create

# The answers to a name-clash warning.
SUGGESTED = "suggested"  # rename each clashing copy to the suggested name
KEEP = "keep"  # keep the names: the user knowingly mixes two images in one repository


@dataclass(frozen=True)
class Clash:
    line: int
    source: str
    suggestion: str | None  # None: a sync, whose destination cannot be renamed


@dataclass(frozen=True)
class LineError:
    line: int
    field: str
    message: str


@dataclass
class BatchOutcome:
    jobs: list[tuple[int, SyncJob, bool]] = field(default_factory=list)  # (line, job, created)
    errors: list[LineError] = field(default_factory=list)
    clashes: list[Clash] = field(default_factory=list)

    @property
    def submitted(self) -> bool:
        return bool(self.jobs) and not self.errors and not self.clashes


def job_clash(namespace: TargetNamespace, kind: str, source: str, destination: str) -> Clash | None:
    """The name clash a submission would cause, if any (line 0: a single submission)."""
    if kind == SyncJob.Kind.SYNC:
        # A sync lands where a default copy of the same repository would.
        suggestion = destination_clash(namespace, source, "")
        return Clash(0, source, None) if suggestion else None
    suggestion = destination_clash(namespace, source, destination)
    return Clash(0, source, suggestion) if suggestion else None


def batch_submit(
    *,
    owner: Any,
    namespace: TargetNamespace,
    kind: str,
    entries: list[tuple[int, str, str]],
    clash: str = "",
) -> BatchOutcome:
    """Create one job per ``(line, source, destination)``, or none at all.

    Every line is tried, so that all bad lines are reported at once; any error or unanswered
    name clash rolls the whole batch back (the dispatches queued for commit go with it).
    ``clash`` answers the warning (``SUGGESTED`` or ``KEEP``); empty, clashes are reported. Lines are checked in order inside one transaction, so two lines of the same
    batch that would clash with each other are caught too.
    """
    outcome = BatchOutcome()
    with transaction.atomic():
        for line, source, destination in entries:
            found = job_clash(namespace, kind, source, destination)
            if found is not None and clash != KEEP:
                if clash == SUGGESTED and found.suggestion:
                    destination = found.suggestion
                else:
                    outcome.clashes.append(Clash(line, source, found.suggestion))
                    continue
            try:
                job, created = job_create(
                    owner=owner, namespace=namespace, kind=kind, source=source, destination=destination
                )
            except ValidationError as exc:
                for name, messages in exc.message_dict.items():
                    outcome.errors.extend(LineError(line, name, message) for message in messages)
                continue
            outcome.jobs.append((line, job, created))
        if not outcome.submitted:
            transaction.set_rollback(True)
    if not outcome.submitted:
        outcome.jobs = []
    return outcome
