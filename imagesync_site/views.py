from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from jobs.models import SyncJob, TargetNamespace


@login_required
def home(request: HttpRequest) -> HttpResponse:
    namespaces = TargetNamespace.objects.pushable_by(request.user)
    jobs = SyncJob.objects.filter(owner=request.user).select_related("namespace")[:20]
    return render(request, "home.html", {"namespaces": namespaces, "jobs": jobs})


@require_GET
@never_cache
def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness for load balancers and `make run`: the process answers and the database too."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
