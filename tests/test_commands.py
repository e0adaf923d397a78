from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from accounts.models import User
from jobs.models import TargetNamespace


def run(*args: str, **env: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_add_user_with_a_password():
    output = run("add_user", "Alice@Example.com", "--password", "correct horse battery staple")
    user = User.objects.get()
    assert user.email == "Alice@example.com"
    assert user.check_password("correct horse battery staple")
    assert not user.is_staff
    assert "Created user" in output
    assert "correct horse" not in output


@pytest.mark.django_db
def test_add_user_generates_and_prints_a_password_once():
    output = run("add_user", "ops@example.com", "--staff")
    password = output.split("Password (shown once): ")[1].strip()
    user = User.objects.get(email="ops@example.com")
    assert user.is_staff and user.is_superuser
    assert user.check_password(password)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["not-an-email"], "is not a valid email address"),
        (["weak@example.com", "--password", "123"], "password is too weak"),
    ],
)
def test_add_user_refuses_bad_input_and_creates_nothing(args, message):
    with pytest.raises(CommandError, match=message):
        run("add_user", *args)
    assert not User.objects.exists()


@pytest.mark.django_db
def test_add_user_refuses_a_duplicate_in_any_case(alice):
    with pytest.raises(CommandError, match="already exists"):
        run("add_user", "ALICE@example.com", "--password", "correct horse battery staple")
    assert User.objects.count() == 1


@pytest.mark.django_db
def test_add_namespace_with_members(alice, bob):
    output = run(
        "add_namespace", "Registry.CN-Hangzhou.aliyuncs.com", "team-a", "--member", "alice@example.com",
        "--member", "BOB@example.com", "--secret", "acr_team_a",
    )
    ns = TargetNamespace.objects.get()
    assert (ns.registry, ns.namespace, ns.credential_secret) == ("registry.cn-hangzhou.aliyuncs.com", "team-a", "ACR_TEAM_A")
    assert set(ns.members.all()) == {alice, bob}
    assert ns.repository_quota == 300
    assert "Aliyun ACR, personal edition (cn-hangzhou)" in output


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["https://registry.cn-hangzhou.aliyuncs.com", "team"], "without https://"),
        (["registry.cn-hangzhou.aliyuncs.com", "Team"], "lower case letters"),
        (["registry.cn-hangzhou.aliyuncs.com", "t"], "2 to 30 characters"),
        (["registry.cn-hangzhou.aliyuncs.com", "team-"], "not at the start or end"),
        (["registry.cn-hangzhou.aliyuncs.com", "team", "--secret", "GITHUB_TOKEN"], "cannot start with GITHUB_"),
        (["registry.cn-hangzhou.aliyuncs.com", "team", "--secret", "1ACR"], "cannot start with"),
        (["registry.cn-hangzhou.aliyuncs.com", "team", "--member", "nobody@example.com"], "no user with the email nobody@example.com"),
        (["registry.cn-hangzhou.aliyuncs.com", "team", "--quota", "0"], "--quota must be at least 1"),
        (["bad host", "team"], "not a valid host name"),
    ],
)
def test_add_namespace_refuses_bad_input_and_creates_nothing(alice, args, message):
    with pytest.raises(CommandError, match=message):
        run("add_namespace", *args)
    assert not TargetNamespace.objects.exists()


@pytest.mark.django_db
def test_add_namespace_refuses_a_duplicate(alice):
    run("add_namespace", "registry.cn-beijing.aliyuncs.com", "team")
    with pytest.raises(CommandError, match="already exists"):
        run("add_namespace", "REGISTRY.cn-beijing.aliyuncs.com", "team", "--member", "alice@example.com")
    assert TargetNamespace.objects.count() == 1


@pytest.mark.django_db
def test_ensure_admin_creates_one_and_prints_its_password_once(monkeypatch):
    monkeypatch.delenv("IMAGESYNC_ADMIN_EMAIL", raising=False)
    monkeypatch.delenv("IMAGESYNC_ADMIN_PASSWORD", raising=False)
    output = run("ensure_admin")
    password = output.split("One-time password for admin@localhost: ")[1].split()[0]
    admin = User.objects.get(email="admin@localhost")
    assert admin.is_superuser and admin.check_password(password)
    assert "exists already" in run("ensure_admin")
    assert User.objects.count() == 1


@pytest.mark.django_db
def test_ensure_admin_uses_the_environment(monkeypatch):
    monkeypatch.setenv("IMAGESYNC_ADMIN_EMAIL", "root@example.com")
    monkeypatch.setenv("IMAGESYNC_ADMIN_PASSWORD", "an admin passphrase 42")
    output = run("ensure_admin")
    assert "an admin passphrase" not in output
    assert User.objects.get(email="root@example.com").check_password("an admin passphrase 42")
    monkeypatch.setenv("IMAGESYNC_ADMIN_PASSWORD", "a new admin passphrase 43")
    run("ensure_admin")
    assert User.objects.get(email="root@example.com").check_password("a new admin passphrase 43")


@pytest.mark.django_db
def test_ensure_admin_needs_an_email_with_a_password(monkeypatch):
    monkeypatch.delenv("IMAGESYNC_ADMIN_EMAIL", raising=False)
    monkeypatch.setenv("IMAGESYNC_ADMIN_PASSWORD", "x")
    with pytest.raises(CommandError, match="IMAGESYNC_ADMIN_EMAIL is not"):
        run("ensure_admin")
    assert not User.objects.exists()
