"""The job page: timeline, run link, per-tag results, failure details and copy lines."""

from __future__ import annotations

import pytest
from django.urls import reverse

from jobs.services import job_transition
from tests.factories import JobFactory
from tests.portal_fixtures import fresh_limits  # noqa: F401 (autouse)

HOST = "registry.cn-hangzhou.aliyuncs.com"


@pytest.fixture
def job(alice, team_namespace):
    job = JobFactory(owner=alice, namespace=team_namespace, status="dispatching")
    job_transition(job=job, to="queued", actor="worker", reason="dispatched", github_run_id=4242,
                   github_run_number=17, github_run_url="https://github.com/acme/imagesync/actions/runs/4242")
    job_transition(job=job, to="running", actor="webhook", reason="run in_progress")
    return job


def url(job, **params) -> str:
    return reverse("jobs:detail", args=[job.pk])


@pytest.mark.django_db
def test_the_owner_sees_the_timeline_the_run_and_the_copy_lines(client, alice, job):
    client.force_login(alice)
    page = client.get(url(job), HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200
    body = page.content.decode()
    assert 'href="https://github.com/acme/imagesync/actions/runs/4242"' in body and "#17" in body
    assert "run in_progress" in body and "dispatched" in body
    assert f'<code id="copy-pull">docker pull {HOST}/team/nginx:1.27</code>' in body
    assert f'<code id="copy-from">FROM {HOST}/team/nginx:1.27</code>' in body
    assert f'<code id="copy-destination">{HOST}/team/nginx:1.27</code>' in body
    assert 'data-copy="copy-pull"' in body
    assert f'data-job-id="{job.pk}" data-active="1" data-status="running"' in body
    assert reverse("jobs:cancel", args=[job.pk]) in body
    assert reverse("jobs:delete", args=[job.pk]) not in body


@pytest.mark.django_db
@pytest.mark.parametrize("persona", ["bob", "charlie"])
def test_nobody_else_can_open_it(client, job, persona, request):
    client.force_login(request.getfixturevalue(persona))
    assert client.get(url(job)).status_code == 404
    assert client.get(url(job), {"partial": "1"}).status_code == 404


@pytest.mark.django_db
def test_anonymous_is_sent_to_sign_in(client, job):
    response = client.get(url(job))
    assert response.status_code == 302 and response["Location"].startswith(reverse("account_login"))


@pytest.mark.django_db
def test_staff_can_open_anyones_job(client, staff, job):
    client.force_login(staff)
    assert client.get(url(job)).status_code == 200


@pytest.mark.django_db
def test_a_failure_shows_the_step_the_message_and_the_log(client, alice, job):
    job_transition(job=job, to="failed", actor="webhook", reason="run completed/failure",
                   error_message="unauthorized: check the ACR fixed password",
                   failed_step="copy › Copy image", log_excerpt="time=... level=fatal msg=\"<unauthorized>\"")
    client.force_login(alice)
    body = client.get(url(job), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "unauthorized: check the ACR fixed password" in body
    assert "copy › Copy image" in body
    assert "level=fatal msg=&quot;&lt;unauthorized&gt;&quot;" in body  # escaped, never raw HTML
    assert reverse("jobs:retry", args=[job.pk]) in body
    assert reverse("jobs:delete", args=[job.pk]) in body
    assert reverse("jobs:cancel", args=[job.pk]) not in body
    assert "copy-pull" not in body  # no pull line for an image that never arrived


@pytest.mark.django_db
def test_a_sync_lists_copied_skipped_and_failed_tags(client, alice, team_namespace):
    job = JobFactory(
        owner=alice, namespace=team_namespace, kind="sync", source="docker.io/bitnami/redis",
        destination=f"{HOST}/team/redis", status="failed",
        result={
            "kind": "sync",
            "copied": [{"tag": "7.2", "digest": "sha256:" + "a" * 64}],
            "skipped": [{"tag": "7.0", "digest": "sha256:" + "b" * 64}],
            "failed": [{"tag": "6.0", "reason": "manifest unknown"}, "junk", {"tag": 5}],
        },
    )
    client.force_login(alice)
    body = client.get(url(job), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "1 copied" in body and "1 already up to date" in body and "1 failed" in body
    assert "manifest unknown" in body
    assert f"docker pull {HOST}/team/redis:7.2" in body
    assert "sha256:" + "b" * 64 in body
    assert "junk" not in body


@pytest.mark.django_db
def test_a_malformed_result_is_ignored(client, alice, team_namespace):
    job = JobFactory(owner=alice, namespace=team_namespace, status="succeeded", result={"copied": "everything"})
    client.force_login(alice)
    page = client.get(url(job))
    assert page.status_code == 200 and page.context["has_result"] is False


@pytest.mark.django_db
def test_the_partial_is_the_live_part_alone(client, alice, job):
    client.force_login(alice)
    fragment = client.get(url(job), {"partial": "1"}, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "<html" not in fragment and "<nav" not in fragment
    assert 'data-role="badge">Running<' in fragment and "copy-pull" in fragment


@pytest.mark.django_db
def test_a_cancel_request_in_flight_is_shown_and_not_offered_again(client, alice, job):
    from jobs.services import job_cancel

    job_cancel(job=job, actor=alice.email)
    client.force_login(alice)
    body = client.get(url(job), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Cancellation requested" in body
    assert reverse("jobs:cancel", args=[job.pk]) not in body


@pytest.mark.django_db
def test_a_retryable_job_links_to_a_prefilled_form(client, alice, job):
    job_transition(job=job, to="failed", actor="webhook")
    client.force_login(alice)
    body = client.get(url(job)).content.decode()
    assert f"{reverse('jobs:new')}?source=docker.io/library/nginx%3A1.27&amp;kind=copy" in body
