"""Submitting jobs: the form (one image) and the batch (one image per line)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.models import User
from jobs.submit import Item, submit_all
from jobs.forms import BatchForm, JobForm
from jobs.localise import localise
from jobs.models import TargetNamespace
from jobs.views.common import submit_limit

# What a link may pre-fill on the form (the "submit again with changes" link of a job page).
PREFILL = ("source", "kind", "destination", "tag_include", "tag_exclude", "namespace")


def _remember_namespace(user: Any, namespace: TargetNamespace) -> None:
    if user.default_namespace_id != namespace.pk:
        User.objects.filter(pk=user.pk).update(default_namespace=namespace)
        user.default_namespace_id = namespace.pk


@login_required
@submit_limit
def job_new(request: HttpRequest) -> HttpResponse:
    clash = None
    if request.method == "POST":
        form = JobForm(request.POST, user=request.user)
        if form.is_valid():
            data = form.cleaned_data
            namespace = data["namespace"]
            outcome = submit_all(
                owner=request.user,
                items=[
                    Item(
                        key=0,
                        source=data["source"],
                        kind=data["kind"],
                        namespace=namespace,
                        destination=data["destination"],
                        tag_include=data["tag_include"],
                        tag_exclude=data["tag_exclude"],
                        on_clash=data["clash"] or "",
                    )
                ],
            )
            clash = outcome.clashes[0] if outcome.clashes else None
            for error in outcome.errors:
                field = error.field if error.field in form.fields else None
                form.add_error(field, localise(error.message))
            if outcome.submitted:
                [(_key, job, created)] = outcome.jobs
                _remember_namespace(request.user, namespace)
                if created:
                    messages.success(request, _("Job #%(id)d submitted.") % {"id": job.pk})
                else:
                    messages.info(
                        request,
                        _("The same job is already under way (#%(id)d): it was not submitted twice.")
                        % {"id": job.pk},
                    )
                return redirect("jobs:detail", pk=job.pk)
    else:
        initial = {key: request.GET[key] for key in PREFILL if request.GET.get(key)}
        form = JobForm(user=request.user, initial=initial)
    return render(request, "jobs/new.html", {"form": form, "clash": clash})


@login_required
@submit_limit
def job_batch(request: HttpRequest) -> HttpResponse:
    outcome = None
    if request.method == "POST":
        form = BatchForm(request.POST, user=request.user)
        if form.is_valid():
            data = form.cleaned_data
            outcome = submit_all(
                owner=request.user,
                items=[
                    Item(
                        key=line,
                        source=source,
                        destination=destination,
                        kind=data["kind"],
                        namespace=data["namespace"],
                        on_clash=data["clash"] or "",
                    )
                    for line, source, destination in data["images"]
                ],
            )
            if outcome.submitted:
                _remember_namespace(request.user, data["namespace"])
                created = sum(1 for _line, _job, new in outcome.jobs if new)
                existing = len(outcome.jobs) - created
                text = ngettext("%(n)d job submitted.", "%(n)d jobs submitted.", created) % {"n": created}
                if existing:
                    text += " " + ngettext(
                        "%(n)d identical job was already under way and was not submitted twice.",
                        "%(n)d identical jobs were already under way and were not submitted twice.",
                        existing,
                    ) % {"n": existing}
                messages.success(request, text)
                return redirect(reverse("home"))
            for error in outcome.errors:
                form.add_error(
                    "images",
                    _("Line %(line)d (%(part)s): %(message)s")
                    % {"line": error.key, "part": _field_label(error.field), "message": localise(error.message)},
                )
    else:
        form = BatchForm(user=request.user)
    return render(request, "jobs/batch.html", {"form": form, "outcome": outcome})


def _field_label(field: str) -> str:
    labels = {
        "source": _("source"),
        "destination": _("destination"),
        "namespace": _("namespace"),
        "kind": _("kind"),
        "tag_include": _("tag filter"),
        "tag_exclude": _("tag filter"),
    }
    return labels.get(field, field)

