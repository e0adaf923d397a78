"""Cancel, retry and delete: POST only, on jobs the user may see (their own; staff: any)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from jobs.localise import localise
from jobs.services import JobActionRefused, job_cancel, job_delete, job_retry
from jobs.views.common import submit_limit, visible_jobs


@require_POST
@login_required
def job_cancel_view(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(visible_jobs(request.user), pk=pk)
    try:
        job_cancel(job=job, actor=request.user.email)
    except JobActionRefused as exc:
        messages.error(request, localise(str(exc)))
    else:
        if job.status == job.Status.CANCELLED:
            messages.success(request, _("Job #%(id)d cancelled.") % {"id": job.pk})
        else:
            messages.success(
                request, _("Cancelling job #%(id)d: its GitHub run is being stopped.") % {"id": job.pk}
            )
    return redirect("jobs:detail", pk=job.pk)


@require_POST
@login_required
@submit_limit
def job_retry_view(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(visible_jobs(request.user), pk=pk)
    try:
        new_job, created = job_retry(job=job, actor=request.user)
    except JobActionRefused as exc:
        messages.error(request, localise(str(exc)))
    except ValidationError as exc:
        messages.error(request, " ".join(localise(m) for m in exc.messages))
    else:
        if created:
            messages.success(request, _("Retrying as job #%(id)d.") % {"id": new_job.pk})
        else:
            messages.info(request, _("The same job is already under way (#%(id)d).") % {"id": new_job.pk})
        return redirect("jobs:detail", pk=new_job.pk)
    return redirect("jobs:detail", pk=job.pk)


@require_POST
@login_required
def job_delete_view(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(visible_jobs(request.user), pk=pk)
    number = job.pk
    try:
        job_delete(job=job)
    except JobActionRefused as exc:
        messages.error(request, localise(str(exc)))
        return redirect("jobs:detail", pk=number)
    messages.success(request, _("Job #%(id)d deleted.") % {"id": number})
    return redirect("home")
