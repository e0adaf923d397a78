"""What every job page needs: whose jobs a user sees, elapsed time, and the submission limit."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django_ratelimit.decorators import ratelimit

from jobs.models import SyncJob

# One bucket for everything that creates jobs (form, batch, retry): 10 per minute per user,
# counted in the shared cache (Redis) so every web process agrees. Anonymous users never get
# here (login_required runs first), so keying on the user is safe.
SUBMIT_RATE = "10/m"
submit_limit = ratelimit(group="jobs.submit", key="user", rate=SUBMIT_RATE, method="POST", block=True)


def visible_jobs(user: Any) -> QuerySet[SyncJob]:
    """The jobs ``user`` may see and act on: their own; staff: everyone's."""
    jobs = SyncJob.objects.select_related("namespace", "owner")
    return jobs if user.is_staff else jobs.filter(owner=user)


def elapsed_seconds(job: SyncJob, now: datetime | None = None) -> int:
    end = job.finished_at or now or timezone.now()
    return max(0, int((end - job.created_at).total_seconds()))


def format_duration(seconds: int) -> str:
    if seconds < 60:
        return _("%(s)d s") % {"s": seconds}
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return _("%(m)d min %(s)02d s") % {"m": minutes, "s": seconds}
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return _("%(h)d h %(m)02d min") % {"h": hours, "m": minutes}
    return _("%(d)d days") % {"d": hours // 24}


def elapsed(job: SyncJob, now: datetime | None = None) -> str:
    return format_duration(elapsed_seconds(job, now))


def status_payload(job: SyncJob, now: datetime) -> dict[str, Any]:
    """What the page's poller needs to redraw one job's row or header."""
    return {
        "id": job.pk,
        "status": job.status,
        "label": str(job.get_status_display()),
        "active": job.is_active,
        "elapsed": elapsed(job, now),
        "url": reverse("jobs:detail", args=[job.pk]),
    }
