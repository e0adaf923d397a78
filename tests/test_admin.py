from __future__ import annotations

import pytest
from django.urls import reverse

from jobs.services import job_transition
from tests.conftest import PASSWORD
from tests.factories import JobFactory


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


@pytest.mark.django_db
@pytest.mark.parametrize(
    "name",
    [
        "admin:index",
        "admin:accounts_user_changelist",
        "admin:accounts_user_add",
        "admin:auth_group_changelist",
        "admin:jobs_targetnamespace_changelist",
        "admin:jobs_targetnamespace_add",
        "admin:jobs_syncjob_changelist",
    ],
)
def test_admin_pages_render_for_staff(staff_client, name):
    assert staff_client.get(reverse(name)).status_code == 200


@pytest.mark.django_db
def test_job_admin_shows_run_link_history_and_filters(staff_client):
    job = JobFactory(status="dispatching")
    job_transition(job=job, to="queued", actor="worker", reason="dispatched", github_run_id=77, github_run_number=5,
                   github_run_url="https://github.com/acme/imagesync/actions/runs/77")
    page = staff_client.get(reverse("admin:jobs_syncjob_change", args=[job.pk]))
    assert page.status_code == 200
    body = page.content.decode()
    assert 'href="https://github.com/acme/imagesync/actions/runs/77"' in body
    assert "dispatched" in body  # the transition history inline
    listing = staff_client.get(reverse("admin:jobs_syncjob_changelist"), {"status__exact": "queued", "q": "nginx"})
    assert listing.status_code == 200 and "#5" in listing.content.decode()


@pytest.mark.django_db
def test_namespace_admin_adds_a_namespace(staff_client, alice):
    response = staff_client.post(
        reverse("admin:jobs_targetnamespace_add"),
        {
            "registry": "Registry.cn-Shanghai.aliyuncs.com",
            "namespace": "team-b",
            "description": "",
            "members": [alice.pk],
            "credential_secret": "acr_team_b",
            "repository_quota": "300",
            "is_active": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    from jobs.models import TargetNamespace

    ns = TargetNamespace.objects.get()
    assert (ns.registry, ns.credential_secret) == ("registry.cn-shanghai.aliyuncs.com", "ACR_TEAM_B")


@pytest.mark.django_db
def test_admin_add_user_form_uses_email(staff_client):
    response = staff_client.post(
        reverse("admin:accounts_user_add"),
        {"email": "new@example.com", "password1": PASSWORD, "password2": PASSWORD, "usable_password": "true"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]


@pytest.mark.django_db
def test_admin_is_closed_to_non_staff(client, alice):
    client.force_login(alice)
    assert client.get(reverse("admin:index")).status_code in (302, 403)


@pytest.mark.django_db
def test_admin_login_goes_through_allauth(client):
    response = client.get(reverse("admin:login"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


@pytest.mark.django_db
def test_an_admin_signs_in_with_email_and_password_then_reaches_the_admin(client, staff):
    page = client.get(reverse("account_login"))
    assert page.status_code == 200
    assert "Content-Security-Policy" in page.headers
    response = client.post(reverse("account_login"), {"login": "ADMIN@example.com", "password": PASSWORD, "next": "/admin/"})
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


@pytest.mark.django_db
def test_sign_up_is_closed_by_default(client):
    response = client.post(reverse("account_signup"), {"email": "new@example.com", "password1": PASSWORD, "password2": PASSWORD})
    from accounts.models import User

    assert not User.objects.filter(email="new@example.com").exists()
    assert response.status_code in (200, 403)
