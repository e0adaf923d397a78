"""Cancel, retry, delete: own jobs only (staff: any), POST with CSRF, refused clearly."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from jobs.models import SyncJob
from tests.factories import JobFactory
from tests.portal_fixtures import fresh_limits  # noqa: F401 (autouse)


@pytest.fixture
def pending(alice, team_namespace):
    return JobFactory(owner=alice, namespace=team_namespace)


@pytest.fixture
def failed(alice, team_namespace):
    return JobFactory(owner=alice, namespace=team_namespace, source="docker.io/library/redis:7",
                      destination=f"{team_namespace}/redis:7", status="failed")


def action(name: str, job: SyncJob) -> str:
    return reverse(f"jobs:{name}", args=[job.pk])


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


@pytest.mark.django_db
def test_the_owner_cancels_a_pending_job(client, alice, pending):
    client.force_login(alice)
    response = client.post(action("cancel", pending), follow=True, HTTP_ACCEPT_LANGUAGE="en")
    pending.refresh_from_db()
    assert pending.status == "cancelled"
    assert f"Job #{pending.pk} cancelled." in messages_of(response)
    assert pending.transitions.filter(actor=alice.email, to_status="cancelled").exists()


@pytest.mark.django_db
def test_cancelling_a_running_job_asks_github(client, alice, team_namespace, django_capture_on_commit_callbacks):
    job = JobFactory(owner=alice, namespace=team_namespace, status="running", github_run_id=99)
    client.force_login(alice)
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(action("cancel", job), follow=True, HTTP_ACCEPT_LANGUAGE="en")
    job.refresh_from_db()
    assert job.status == "running" and job.cancel_requested_at is not None
    assert len(callbacks) == 1  # the cancel_run task, after commit
    assert any("being stopped" in m for m in messages_of(response))


@pytest.mark.django_db
def test_cancelling_a_finished_job_is_refused_with_a_message(client, alice, failed):
    client.force_login(alice)
    response = client.post(action("cancel", failed), follow=True, HTTP_ACCEPT_LANGUAGE="en")
    assert "The job has already finished." in messages_of(response)
    failed.refresh_from_db()
    assert failed.status == "failed"


@pytest.mark.django_db
def test_the_owner_retries_a_failed_job_as_a_new_one(client, alice, failed):
    client.force_login(alice)
    response = client.post(action("retry", failed))
    new = SyncJob.objects.exclude(pk=failed.pk).get()
    assert response["Location"] == reverse("jobs:detail", args=[new.pk])
    assert (new.owner, new.source, new.destination, new.status) == (alice, failed.source, failed.destination, "pending")


@pytest.mark.django_db
def test_a_running_job_cannot_be_retried(client, alice, pending):
    client.force_login(alice)
    response = client.post(action("retry", pending), follow=True, HTTP_ACCEPT_LANGUAGE="en")
    assert "Only a failed, cancelled or errored job can be retried." in messages_of(response)
    assert SyncJob.objects.count() == 1


@pytest.mark.django_db
def test_a_retry_into_a_namespace_no_longer_allowed_is_refused(client, alice, failed, team_namespace):
    team_namespace.members.remove(alice)
    client.force_login(alice)
    response = client.post(action("retry", failed), follow=True, HTTP_ACCEPT_LANGUAGE="en")
    assert any("You may not push to" in m for m in messages_of(response))
    assert SyncJob.objects.count() == 1


@pytest.mark.django_db
def test_the_owner_deletes_a_finished_job(client, alice, failed):
    client.force_login(alice)
    response = client.post(action("delete", failed), follow=True, HTTP_ACCEPT_LANGUAGE="en")
    assert response.redirect_chain[-1][0] == reverse("home")
    assert not SyncJob.objects.exists()
    assert f"Job #{failed.pk} deleted." in messages_of(response)


@pytest.mark.django_db
def test_an_active_job_is_not_deleted(client, alice, pending):
    client.force_login(alice)
    response = client.post(action("delete", pending), follow=True, HTTP_ACCEPT_LANGUAGE="en")
    assert "Only a finished job can be deleted: cancel it first." in messages_of(response)
    assert SyncJob.objects.filter(pk=pending.pk).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("persona", ["bob", "charlie"])
@pytest.mark.parametrize("name", ["cancel", "retry", "delete"])
def test_nobody_else_touches_alices_jobs(client, request, persona, name, pending, failed):
    client.force_login(request.getfixturevalue(persona))
    target = failed if name in ("retry", "delete") else pending
    assert client.post(action(name, target)).status_code == 404
    assert sorted(SyncJob.objects.values_list("pk", "status")) == sorted([(pending.pk, "pending"), (failed.pk, "failed")])


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["cancel", "retry", "delete"])
def test_anonymous_is_sent_to_sign_in(client, name, pending):
    response = client.post(action(name, pending))
    assert response.status_code == 302 and response["Location"].startswith(reverse("account_login"))
    assert SyncJob.objects.get().status == "pending"


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["cancel", "retry", "delete"])
def test_actions_are_post_only(client, alice, name, pending):
    client.force_login(alice)
    assert client.get(action(name, pending)).status_code == 405


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["cancel", "delete"])
def test_actions_need_the_csrf_token(alice, name, pending, failed):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)
    assert strict.post(action(name, pending if name == "cancel" else failed)).status_code == 403
    assert SyncJob.objects.count() == 2


@pytest.mark.django_db
def test_staff_may_cancel_and_delete_anyones_job(client, staff, pending, failed):
    client.force_login(staff)
    client.post(action("cancel", pending))
    client.post(action("delete", failed))
    assert list(SyncJob.objects.values_list("pk", "status")) == [(pending.pk, "cancelled")]
    assert pending.transitions.filter(actor=staff.email).exists()


@pytest.mark.django_db
def test_retries_count_against_the_submission_limit(client, alice, team_namespace):
    jobs = [JobFactory(owner=alice, namespace=team_namespace, source=f"docker.io/library/nginx:1.{n}",
                       destination=f"{team_namespace}/nginx:1.{n}", status="failed") for n in range(11)]
    client.force_login(alice)
    codes = [client.post(action("retry", job)).status_code for job in jobs]
    assert codes == [302] * 10 + [429]
