from __future__ import annotations

import json
import uuid

import pytest
from django.urls import reverse

from jobs import github
from jobs.models import SyncJob, WebhookDelivery
from jobs.services import job_apply_webhook_run, parse_run_log
from tests.factories import JobFactory

SECRET = "It's a Secret to Everybody"
REPO = "acme/imagesync"


@pytest.fixture(autouse=True)
def github_settings(settings):
    settings.GITHUB_WEBHOOK_SECRET = SECRET
    settings.GITHUB_REPOSITORY = REPO
    settings.GITHUB_TOKEN = "test-token"


def run_json(run_id: int, status: str = "in_progress", conclusion: str | None = None, title: str = "copy x") -> dict:
    return {
        "id": run_id, "run_number": 7, "run_attempt": 1, "display_title": title, "name": "copy",
        "event": "workflow_dispatch", "status": status, "conclusion": conclusion,
        "html_url": f"https://github.com/{REPO}/actions/runs/{run_id}",
        "created_at": "2026-11-27T10:00:00Z", "updated_at": "2026-11-27T10:00:05Z",
        "run_started_at": "2026-11-27T10:00:01Z", "path": ".github/workflows/copy.yml", "workflow_id": 1,
    }


def deliver(client, payload: dict, *, secret: str | None = SECRET, guid: str | None = None, event: str = "workflow_run", form: bool = False):
    if form:
        from urllib.parse import urlencode

        body = urlencode({"payload": json.dumps(payload)}).encode()
        content_type = "application/x-www-form-urlencoded"
    else:
        body = json.dumps(payload).encode()
        content_type = "application/json"
    headers = {"HTTP_X_GITHUB_EVENT": event, "HTTP_X_GITHUB_DELIVERY": guid or str(uuid.uuid4())}
    if secret is not None:
        headers["HTTP_X_HUB_SIGNATURE_256"] = github.sign_webhook_body(secret, body)
    return client.post(reverse("github_webhook"), data=body, content_type=content_type, **headers)


def event(run: dict, action: str = "in_progress") -> dict:
    return {"action": action, "workflow_run": run, "repository": {"full_name": REPO}, "sender": {"login": "x"}}


@pytest.mark.django_db
def test_a_signed_delivery_is_accepted_and_applied_in_a_task(client, django_capture_on_commit_callbacks):
    job = JobFactory(status="queued", github_run_id=501)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = deliver(client, event(run_json(501)))
    assert response.status_code == 202
    assert len(callbacks) == 1
    assert WebhookDelivery.objects.get().run_id == 501
    job.refresh_from_db()
    assert job.status == "queued"  # the view only enqueues; the task applies
    assert job_apply_webhook_run(run_data=run_json(501)) == "applied"
    job.refresh_from_db()
    assert job.status == "running"


@pytest.mark.django_db
@pytest.mark.parametrize("secret", [None, "wrong secret"])
def test_a_forged_or_unsigned_delivery_is_refused_and_changes_nothing(client, secret, django_capture_on_commit_callbacks):
    job = JobFactory(status="queued", github_run_id=502)
    with django_capture_on_commit_callbacks() as callbacks:
        response = deliver(client, event(run_json(502, "completed", "success"), "completed"), secret=secret)
    assert response.status_code == 403
    assert not callbacks and not WebhookDelivery.objects.exists()
    job.refresh_from_db()
    assert job.status == "queued"


@pytest.mark.django_db
def test_a_tampered_body_is_refused(client):
    body = json.dumps(event(run_json(503))).encode()
    signature = github.sign_webhook_body(SECRET, body)
    response = client.post(
        reverse("github_webhook"), data=body.replace(b"503", b"504"), content_type="application/json",
        HTTP_X_GITHUB_EVENT="workflow_run", HTTP_X_GITHUB_DELIVERY=str(uuid.uuid4()), HTTP_X_HUB_SIGNATURE_256=signature,
    )
    assert response.status_code == 403


@pytest.mark.django_db
def test_a_redelivery_is_answered_but_not_applied_twice(client, django_capture_on_commit_callbacks):
    guid = str(uuid.uuid4())
    with django_capture_on_commit_callbacks() as callbacks:
        assert deliver(client, event(run_json(505)), guid=guid).status_code == 202
        second = deliver(client, event(run_json(505)), guid=guid)
    assert second.status_code == 200 and second.json()["detail"] == "duplicate delivery"
    assert len(callbacks) == 1


@pytest.mark.django_db
def test_form_encoded_payloads_and_ping(client):
    assert deliver(client, event(run_json(506)), form=True).status_code == 202
    assert deliver(client, {"zen": "hi"}, event="ping").status_code == 200


@pytest.mark.django_db
def test_other_repositories_and_events_are_ignored(client):
    other = event(run_json(507))
    other["repository"]["full_name"] = "someone/else"
    assert deliver(client, other).status_code == 202
    assert deliver(client, {"action": "opened"}, event="issues").status_code == 202
    assert not WebhookDelivery.objects.exists()


@pytest.mark.django_db
def test_without_a_configured_secret_every_delivery_is_refused(client, settings):
    settings.GITHUB_WEBHOOK_SECRET = ""
    assert deliver(client, event(run_json(508))).status_code == 403


@pytest.mark.django_db
def test_a_run_is_matched_by_request_id_when_its_id_is_not_known_yet():
    job = JobFactory(status="queued")
    title = f"copy nginx:1 to team/nginx:1 [{job.request_id}]"
    assert job_apply_webhook_run(run_data=run_json(509, "completed", "success", title=title)) == "applied"
    job.refresh_from_db()
    assert (job.status, job.github_run_id, job.github_run_number) == ("succeeded", 509, 7)
    assert job.finished_at is not None


@pytest.mark.django_db
def test_out_of_order_news_never_moves_a_job_backwards():
    job = JobFactory(status="running", github_run_id=510)
    job_apply_webhook_run(run_data=run_json(510, "completed", "failure"))
    job_apply_webhook_run(run_data=run_json(510, "in_progress"))
    job.refresh_from_db()
    assert job.status == "failed"
    assert job.error_message == "the workflow run failed"
    assert list(job.transitions.values_list("to_status", flat=True)) == ["failed"]


@pytest.mark.django_db
def test_news_of_an_unknown_run_changes_nothing():
    JobFactory(status="queued", github_run_id=511)
    assert job_apply_webhook_run(run_data=run_json(999)) == "no job"
    assert SyncJob.objects.get().status == "queued"


def test_parse_run_log_finds_the_result_and_errors():
    text = "\n".join(
        [
            "2026-11-27T10:00:01.123Z Run python3 .github/scripts/imagesync_transfer.py sync",
            '2026-11-27T10:00:02.000Z IMAGESYNC-RESULT {"kind": "sync", "copied": [{"tag": "1"}], "failed": []}',
            "2026-11-27T10:00:03.000Z ::error title=imagesync::destination refused the credentials%0Acheck it",
            "2026-11-27T10:00:04.000Z ##[error]Process completed with exit code 1.",
            "plain line",
        ]
    )
    result, errors, tail = parse_run_log(text)
    assert result == {"kind": "sync", "copied": [{"tag": "1"}], "failed": []}
    assert errors == ["destination refused the credentials\ncheck it", "Process completed with exit code 1."]
    assert tail[-1] == "plain line"
