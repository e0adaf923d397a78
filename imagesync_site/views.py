from __future__ import annotations

from http import HTTPStatus

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from jobs.views.common import SUBMIT_RATE


def ratelimited(request: HttpRequest, exception: Exception) -> HttpResponse:
    """RATELIMIT_VIEW: django-ratelimit's block as a 429 page instead of a bare 403."""
    amount, _slash, period = SUBMIT_RATE.partition("/")
    response = render(
        request, "429.html", {"reason": "submit", "limit": int(amount)}, status=HTTPStatus.TOO_MANY_REQUESTS
    )
    # The limit counts per calendar minute (django-ratelimit's fixed windows).
    response["Retry-After"] = "60" if period == "m" else "3600"
    return response


@require_GET
@never_cache
def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness for load balancers and `make run`: the process answers and the database too."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
