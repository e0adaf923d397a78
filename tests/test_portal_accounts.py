"""Sign-in (with its brute-force lock), the profile, and allauth's pages inside the layout."""

from __future__ import annotations

import pytest
from django.core import mail
from django.urls import reverse

from tests.conftest import PASSWORD
from tests.factories import NamespaceFactory
from tests.portal_fixtures import fresh_limits  # noqa: F401 (autouse)

LOGIN = reverse("account_login")
PROFILE = reverse("profile")


def sign_in(client, email: str, password: str, ip: str = "203.0.113.7", **extra):
    return client.post(LOGIN, {"login": email, "password": password}, REMOTE_ADDR=ip, **extra)


@pytest.mark.django_db
def test_the_sign_in_page_does_not_invite_to_a_closed_sign_up(client):
    body = client.get(LOGIN, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'name="login"' in body and 'name="password"' in body
    assert reverse("account_signup") not in body
    assert "Accounts are created by an administrator" in body
    assert reverse("account_reset_password") in body


@pytest.mark.django_db
def test_sign_in_with_email_and_password(client, alice):
    response = sign_in(client, "ALICE@example.com", PASSWORD)
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get(reverse("home")).status_code == 200


@pytest.mark.django_db
def test_five_failures_lock_the_account_with_a_429(client, alice):
    for _ in range(5):
        assert sign_in(client, alice.email, "wrong").status_code == 200
    locked = sign_in(client, alice.email, PASSWORD, ip="198.51.100.9", HTTP_ACCEPT_LANGUAGE="en")
    assert locked.status_code == 429
    assert locked["Retry-After"] == str(15 * 60)
    assert "Too many failed sign-in attempts" in locked.content.decode()
    assert "_auth_user_id" not in client.session  # even the right password is refused meanwhile


@pytest.mark.django_db
def test_five_failures_from_one_address_lock_that_address(client, alice, bob, charlie):
    for email in ["nobody@example.com", bob.email, charlie.email, "x@example.com", "y@example.com"]:
        assert sign_in(client, email, "wrong", ip="192.0.2.1").status_code == 200
    assert sign_in(client, alice.email, PASSWORD, ip="192.0.2.1").status_code == 429
    # Another address is not affected, and alice's own count was never touched.
    assert sign_in(client, alice.email, PASSWORD, ip="192.0.2.2").status_code == 302


@pytest.mark.django_db
def test_successful_sign_ins_do_not_count_as_failures(client, alice):
    for _ in range(8):
        assert sign_in(client, alice.email, PASSWORD).status_code == 302
        client.post(reverse("account_logout"))


@pytest.mark.django_db
def test_the_lock_message_is_in_chinese_for_a_chinese_browser(client, alice):
    for _ in range(5):
        sign_in(client, alice.email, "wrong")
    locked = sign_in(client, alice.email, "wrong", HTTP_ACCEPT_LANGUAGE="zh-CN")
    assert locked.status_code == 429 and "登录失败次数过多" in locked.content.decode()


@pytest.mark.django_db
def test_the_admin_sign_in_goes_through_the_same_lock(client, staff):
    response = client.get(reverse("admin:login"))
    assert response.status_code == 302 and response["Location"].startswith(LOGIN)
    for _ in range(5):
        sign_in(client, staff.email, "wrong")
    assert sign_in(client, staff.email, PASSWORD).status_code == 429


@pytest.mark.django_db
def test_password_reset_sends_an_email(client, alice):
    page = client.get(reverse("account_reset_password"))
    assert page.status_code == 200
    response = client.post(reverse("account_reset_password"), {"email": alice.email})
    assert response.status_code == 302
    assert len(mail.outbox) == 1 and alice.email in mail.outbox[0].to


@pytest.mark.django_db
def test_sign_out(client, alice):
    client.force_login(alice)
    assert client.post(reverse("account_logout")).status_code == 302
    assert client.get(reverse("home")).status_code == 302


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["account_change_password", "mfa_index"])
def test_account_pages_render_in_the_portal_layout(client, alice, name):
    client.force_login(alice)
    page = client.get(reverse(name), HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200
    body = page.content.decode()
    assert 'class="subnav"' in body and PROFILE in body and "imagesync.css" in body


@pytest.mark.django_db
def test_two_factor_activation_asks_for_the_password_first(client, alice):
    client.force_login(alice)
    page = client.get(reverse("mfa_activate_totp"), follow=True)
    assert page.redirect_chain[-1][0].startswith(reverse("account_reauthenticate"))
    client.post(page.redirect_chain[-1][0], {"password": PASSWORD})
    activate = client.get(reverse("mfa_activate_totp"))
    assert activate.status_code == 200
    assert 'src="data:image/svg+xml' in activate.content.decode()  # the QR code, allowed by img-src data:


# -- profile ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_profile_lists_the_namespaces_the_user_may_push_to(client, alice, team_namespace):
    NamespaceFactory(namespace="secret-team")
    via_group = NamespaceFactory(namespace="group-team")
    from django.contrib.auth.models import Group

    group = Group.objects.create(name="ops")
    alice.groups.add(group)
    via_group.member_groups.add(group)
    client.force_login(alice)
    body = client.get(PROFILE, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "alice@example.com" in body
    assert f"{team_namespace}" in body and "group-team" in body
    assert "secret-team" not in body
    assert "0 of 300" in body


@pytest.mark.django_db
def test_charlie_is_told_he_has_no_namespace(client, charlie):
    client.force_login(charlie)
    assert "Ask an administrator" in client.get(PROFILE, HTTP_ACCEPT_LANGUAGE="en").content.decode()


@pytest.mark.django_db
def test_the_default_namespace_is_chosen_on_the_profile(client, alice, team_namespace):
    client.force_login(alice)
    assert client.post(PROFILE, {"namespace": team_namespace.pk}).status_code == 302
    alice.refresh_from_db()
    assert alice.default_namespace == team_namespace
    client.post(PROFILE, {"namespace": ""})
    alice.refresh_from_db()
    assert alice.default_namespace is None


@pytest.mark.django_db
def test_a_foreign_namespace_cannot_become_the_default(client, alice, team_namespace):
    foreign = NamespaceFactory(namespace="foreign")
    client.force_login(alice)
    page = client.post(PROFILE, {"namespace": foreign.pk})
    assert page.status_code == 200 and "namespace" in page.context["form"].errors
    alice.refresh_from_db()
    assert alice.default_namespace is None


@pytest.mark.django_db
def test_the_profile_needs_a_signed_in_user(client):
    response = client.get(PROFILE)
    assert response.status_code == 302 and response["Location"].startswith(LOGIN)


@pytest.mark.django_db
def test_the_tokens_page_is_in_the_menu(client, alice):
    client.force_login(alice)
    body = client.get(PROFILE).content.decode()
    assert reverse("api_tokens") in body


@pytest.mark.django_db
def test_the_profile_says_whether_two_factor_is_on(client, alice):
    from allauth.mfa.models import Authenticator

    client.force_login(alice)
    assert "Off" in client.get(PROFILE, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    Authenticator.objects.create(user=alice, type=Authenticator.Type.TOTP, data={"secret": "x"})
    assert "On (authenticator app)" in client.get(PROFILE, HTTP_ACCEPT_LANGUAGE="en").content.decode()
