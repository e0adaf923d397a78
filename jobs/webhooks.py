"""GitHub's ``workflow_run`` webhook: verify, deduplicate, answer fast, work in a task."""

from __future__ import annotations

import json
import logging
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from jobs import github
from jobs.models import WebhookDelivery

log = logging.getLogger(__name__)


def _answer(status: int, detail: str) -> JsonResponse:
    return JsonResponse({"detail": detail}, status=status)


def _payload(request: HttpRequest) -> dict[str, Any] | None:
    try:
        if request.content_type == "application/x-www-form-urlencoded":
            data = json.loads(request.POST.get("payload", ""))
        else:
            data = json.loads(request.body)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


@csrf_exempt  # authenticated by the HMAC signature instead; GitHub sends no CSRF token
@require_POST
def github_webhook(request: HttpRequest) -> JsonResponse:
    secret = settings.GITHUB_WEBHOOK_SECRET
    if not secret:
        return _answer(403, "webhooks are not configured: set GITHUB_WEBHOOK_SECRET")
    if not github.verify_webhook_signature(secret, request.body, request.headers.get("X-Hub-Signature-256")):
        log.warning("webhook with a missing or wrong signature from %s", request.META.get("REMOTE_ADDR"))
        return _answer(403, "invalid signature")
    event = request.headers.get("X-GitHub-Event", "")
    if event == "ping":
        return _answer(200, "pong")
    if event != "workflow_run":
        return _answer(202, f"event {event!r} ignored")
    guid = request.headers.get("X-GitHub-Delivery", "")
    if not guid or len(guid) > 64:
        return _answer(400, "missing X-GitHub-Delivery")
    payload = _payload(request)
    run = payload.get("workflow_run") if payload else None
    if not isinstance(run, dict) or not isinstance(run.get("id"), int):
        return _answer(400, "not a workflow_run payload")
    repository = (payload.get("repository") or {}).get("full_name", "")
    if str(repository).lower() != settings.GITHUB_REPOSITORY.lower():
        return _answer(202, f"repository {repository!r} ignored")
    try:
        with transaction.atomic():
            WebhookDelivery.objects.create(
                guid=guid, event=event, action=str(payload.get("action", ""))[:50], run_id=run["id"]
            )
    except IntegrityError:
        return _answer(200, "duplicate delivery")
    from jobs.tasks import apply_webhook_run

    transaction.on_commit(lambda: apply_webhook_run.delay(run))
    return _answer(202, "accepted")
