"""Celery tasks: thin, take ids, safe to run twice. The rules live in jobs.services."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from jobs import github, services
from jobs.models import SyncJob, WebhookDelivery

log = logging.getLogger(__name__)

_RETRY = dict(autoretry_for=(github.TransientError,), retry_backoff=5, retry_backoff_max=300, retry_jitter=True, max_retries=8)
# While GitHub's rate limit is exhausted, periodic work waits instead of hammering it.
BACKOFF_KEY = "imagesync:github-backoff"


def _github_backoff(exc: github.GitHubError) -> None:
    if exc.kind == "rate_limited" and exc.retry_after:
        cache.set(BACKOFF_KEY, True, timeout=exc.retry_after)


@shared_task(acks_late=True)
def dispatch_job(job_id: int) -> str:
    return services.job_dispatch(job_id=job_id)


@shared_task(acks_late=True)
def resolve_dispatch(job_id: int) -> str:
    return services.job_resolve_dispatch(job_id=job_id)


@shared_task(acks_late=True)
def apply_webhook_run(run_data: dict[str, Any]) -> str:
    return services.job_apply_webhook_run(run_data=run_data)


@shared_task(acks_late=True, **_RETRY)
def collect_run_report(job_id: int) -> str:
    try:
        return services.job_collect_report(job_id=job_id)
    except services.GitHubNotConfigured:
        return "not configured"


@shared_task(acks_late=True, **_RETRY)
def cancel_run(job_id: int) -> str:
    return services.job_cancel_run(job_id=job_id)


@shared_task(acks_late=True, **_RETRY)
def check_run(job_id: int) -> str:
    try:
        return services.job_check_run(job_id=job_id)
    except services.GitHubNotConfigured:
        return "not configured"


@shared_task
def poll_active_runs() -> int:
    """The safety net under webhooks: one list call per workflow covers every active job."""
    if cache.get(BACKOFF_KEY):
        return 0
    # Beat may fire again while a slow poll still runs: only one poll at a time.
    if not cache.add("imagesync:poll-lock", True, timeout=settings.IMAGESYNC_POLL_INTERVAL * 4):
        return 0
    try:
        # A workflow is polled only when one of its active jobs has had no news for a while; the
        # list then updates all of them. While webhooks are arriving, "a while" is longer: a run
        # sends nothing between its in_progress and completed events.
        now = timezone.now()
        quiet = settings.IMAGESYNC_POLL_INTERVAL
        if settings.GITHUB_WEBHOOK_SECRET and WebhookDelivery.objects.filter(
            received_at__gte=now - timedelta(seconds=2 * settings.IMAGESYNC_WEBHOOK_QUIET)
        ).exists():
            quiet = max(quiet, settings.IMAGESYNC_WEBHOOK_QUIET)
        quiet_since = now - timedelta(seconds=quiet)
        active = list(
            SyncJob.objects.filter(status__in=[SyncJob.Status.QUEUED, SyncJob.Status.RUNNING]).order_by("created_at")[:500]
        )
        changed = 0
        for workflow in ("copy.yml", "sync.yml"):
            jobs = [j for j in active if j.workflow == workflow]
            if not any(j.updated_at < quiet_since for j in jobs):
                continue
            try:
                changed += services.poll_workflow(
                    workflow=workflow,
                    jobs=jobs,
                    etag_get=lambda key: cache.get(f"imagesync:etag:{key}"),
                    etag_set=lambda key, etag: cache.set(f"imagesync:etag:{key}", etag, timeout=3600),
                )
            except services.GitHubNotConfigured:
                return 0
            except github.GitHubError as exc:
                _github_backoff(exc)
                log.warning("polling %s failed: %s", workflow, exc.message)
        return changed
    finally:
        cache.delete("imagesync:poll-lock")


@shared_task
def sweep_stuck_jobs() -> dict[str, int]:
    """Finish what a lost message or a dead worker left behind, in bounded batches."""
    stale = services.stale_jobs(timezone.now())
    for job_id in stale["dispatch"]:
        dispatch_job.delay(job_id)
    for job_id in stale["resolve"]:
        resolve_dispatch.delay(job_id)
    for job_id in stale["check"]:
        check_run.delay(job_id)
    counts = {name: len(ids) for name, ids in stale.items()}
    # GitHub redelivers by hand only, within days: a week of GUIDs is plenty to deduplicate.
    counts["deliveries_pruned"], _ = WebhookDelivery.objects.filter(
        received_at__lt=timezone.now() - timedelta(days=7)
    ).delete()
    return counts
