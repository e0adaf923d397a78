"""One job: its timeline, run, per-tag results, failure details, pull lines and actions."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone

from jobs.models import SyncJob
from jobs.views.common import elapsed, visible_jobs

RETRYABLE = frozenset({SyncJob.Status.FAILED, SyncJob.Status.CANCELLED, SyncJob.Status.ERROR})
# Rows shown per outcome: a sync of a busy repository can report thousands of tags.
MAX_RESULT_ROWS = 500


def _entries(result: dict[str, Any], key: str, fields: tuple[str, ...]) -> list[dict[str, str]]:
    """``result[key]`` as a list of string-valued rows; anything malformed is left out.

    The result comes from a line the workflow printed in its log: shown, never trusted.
    """
    items = result.get(key) if isinstance(result, dict) else None
    if not isinstance(items, list):
        return []
    rows = []
    for item in items[:MAX_RESULT_ROWS]:
        if isinstance(item, dict) and isinstance(item.get("tag"), str):
            rows.append({name: str(item.get(name) or "") for name in fields})
    return rows


def _pull_target(job: SyncJob) -> str:
    if job.kind == SyncJob.Kind.COPY:
        return job.destination
    return f"{job.destination}:TAG"


def detail_context(job: SyncJob) -> dict[str, Any]:
    result = job.result if isinstance(job.result, dict) else {}
    copied = _entries(result, "copied", ("tag", "digest"))
    skipped = _entries(result, "skipped", ("tag", "digest"))
    failed = _entries(result, "failed", ("tag", "reason"))
    if job.kind == SyncJob.Kind.SYNC:
        for row in copied + skipped:
            row["pull"] = f"docker pull {job.destination}:{row['tag']}"
    target = _pull_target(job)
    return {
        "job": job,
        "elapsed": elapsed(job, timezone.now()),
        "transitions": list(job.transitions.all()),
        "copied": copied,
        "skipped": skipped,
        "failed": failed,
        "has_result": bool(copied or skipped or failed),
        "pull_line": f"docker pull {target}",
        "from_line": f"FROM {target}",
        "can_cancel": job.is_active and job.cancel_requested_at is None,
        "can_retry": job.status in RETRYABLE,
        "can_delete": job.is_finished,
    }


@login_required
def job_detail(request: HttpRequest, pk: int) -> HttpResponse:
    # Another user's job is "not found", not "forbidden": its existence is not theirs to know.
    job = get_object_or_404(visible_jobs(request.user), pk=pk)
    # The poller swaps in the live part alone when the job moves, without reloading the page.
    template = "jobs/_live.html" if request.GET.get("partial") == "1" else "jobs/detail.html"
    return render(request, template, detail_context(job))
