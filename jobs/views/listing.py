"""The job list, and the small JSON answer its rows poll while jobs are active."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from jobs.forms import JobFilterForm
from jobs.models import SyncJob
from jobs.pagination import LimitedCountPaginator, count_limit_for
from jobs.views.common import elapsed, status_payload, visible_jobs

PAGE_SIZE = 25
# One poll asks about at most this many jobs: a page's worth, with room to spare.
MAX_STATUS_IDS = 100


@login_required
def job_list(request: HttpRequest) -> HttpResponse:
    form = JobFilterForm(request.GET or None, user=request.user)
    form.is_valid()  # invalid filters are shown with their error and left out
    filters = getattr(form, "cleaned_data", {})
    show_all = request.user.is_staff and filters.get("scope") == "all"
    jobs = visible_jobs(request.user) if show_all else visible_jobs(request.user).filter(owner=request.user)
    if query := filters.get("q"):
        jobs = jobs.filter(Q(source__icontains=query) | Q(destination__icontains=query))
    if status := filters.get("status"):
        jobs = jobs.filter(status__in=SyncJob.ACTIVE_STATUSES) if status == form.ACTIVE else jobs.filter(status=status)
    if kind := filters.get("kind"):
        jobs = jobs.filter(kind=kind)
    if namespace := filters.get("namespace"):
        jobs = jobs.filter(namespace=namespace)
    jobs = jobs.defer("result", "log_excerpt")  # only the job's own page shows them
    count_limit = count_limit_for(request.GET.get("page"), PAGE_SIZE, last_page_strings=())
    page = LimitedCountPaginator(jobs, PAGE_SIZE, count_limit=count_limit).get_page(request.GET.get("page"))
    now = timezone.now()
    # The registry is the namespace's: the list shows the destination without it (the job
    # page has the full reference).
    rows = [
        (job, elapsed(job, now), job.destination.removeprefix(f"{job.namespace.registry}/"))
        for job in page.object_list
    ]
    filtered = any(filters.get(name) for name in ("q", "status", "kind", "namespace"))
    return render(
        request,
        "jobs/list.html",
        {
            "form": form,
            "page": page,
            "rows": rows,
            "show_owner": show_all,
            "filtered": filtered,
        },
    )


@require_GET
@never_cache
def job_status(request: HttpRequest) -> HttpResponse:
    """``?ids=1,2,3`` → the status of those of the caller's jobs (staff: anyone's)."""
    if not request.user.is_authenticated:
        # A JSON caller cannot follow the login redirect: say so plainly instead.
        return JsonResponse({"error": _("Sign in again to follow your jobs.")}, status=401)
    text = request.GET.get("ids", "")
    parts = [part for part in text.split(",") if part]
    if not parts or len(parts) > MAX_STATUS_IDS or not all(p.isascii() and p.isdigit() and len(p) < 19 for p in parts):
        return JsonResponse(
            {"error": _("ids must be 1 to %(max)d job numbers separated by commas.") % {"max": MAX_STATUS_IDS}},
            status=400,
        )
    jobs = visible_jobs(request.user).filter(pk__in={int(p) for p in parts})
    now = timezone.now()
    payload = [status_payload(job, now) for job in jobs]
    return JsonResponse({"jobs": payload, "active": any(item["active"] for item in payload)})
