"""API tokens: format, storage, authentication, throttles, the management commands and the portal page."""

from __future__ import annotations

import hashlib
import io
import os
import re
import time
import uuid
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiToken
from accounts.tokens import TOKEN_RE, token_create, token_revoke
from tests.api_support import API, client_for, fresh_throttles, rates, token_for  # noqa: F401
from jobs.api.throttles import Window
from jobs.models import SyncJob
from tests.concurrency import at_once, needs_postgresql
from tests.factories import JobFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_throttles")]


def me(header: str | None):
    client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    if header is not None:
        client.credentials(HTTP_AUTHORIZATION=header)
    return client.get(f"{API}/me/")


def test_a_token_is_shown_once_and_only_its_digest_is_stored(alice):
    row, token = token_create(user=alice, name="laptop")
    assert TOKEN_RE.fullmatch(token) and token.startswith(f"isk_{row.prefix}_")
    assert row.digest == hashlib.sha256(token.encode()).hexdigest()
    stored = ApiToken.objects.filter(pk=row.pk).values()[0]
    assert token not in str(stored) and token.split("_", 2)[2] not in str(stored)


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "Token"])
def test_bearer_and_drfs_token_scheme_both_authenticate(alice, scheme):
    token = token_for(alice, name="laptop", expires_in_days=30)
    response = me(f"{scheme} {token}")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["email"], body["authenticated_by"], body["is_staff"]) == (
        "alice@example.com",
        "token",
        False,
    )
    assert body["token"]["name"] == "laptop" and body["token"]["prefix"] == token[4:12]
    assert body["token"]["expires_at"] and body["portal_url"].startswith("http://testserver/")


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "Authentication credentials were not provided."),
        ("Basic YWxpY2U6cHc=", "Authentication credentials were not provided."),
        ("Bearer", "No token after Bearer"),
        ("Bearer a b", "exactly one token"),
        ("Bearer isk_short", "Malformed API token"),
        ("Bearer isk_abcdefgh_" + "x" * 43, "Unknown API token."),
    ],
)
def test_missing_or_malformed_tokens_get_401_with_a_message(alice, header, message):
    response = me(header)
    assert response.status_code == 401
    assert message in response.json()["detail"]
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_a_wrong_secret_with_a_real_prefix_is_refused(alice):
    token = token_for(alice)
    forged = token[:13] + ("A" if token[13] != "A" else "B") + token[14:]
    assert me(f"Bearer {forged}").json()["detail"] == "Unknown API token."


def test_revoked_expired_and_disabled_tokens_are_refused_saying_why(alice, bob, charlie):
    revoked, revoked_token = token_create(user=alice, name="old")
    token_revoke(token=revoked)
    expired, expired_token = token_create(user=bob, name="ci", expires_in_days=1)
    ApiToken.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    disabled_token = token_for(charlie)
    charlie.is_active = False
    charlie.save()
    assert me(f"Bearer {revoked_token}").json()["detail"] == "This API token was revoked."
    assert me(f"Bearer {expired_token}").json()["detail"] == "This API token has expired."
    assert me(f"Bearer {disabled_token}").json()["detail"] == "The account of this API token is disabled."


def test_last_used_is_written_at_most_once_a_minute(alice, django_assert_num_queries):
    row, token = token_create(user=alice, name="laptop")
    assert me(f"Bearer {token}").status_code == 200
    row.refresh_from_db()
    first = row.last_used_at
    assert first is not None
    with django_assert_num_queries(1):  # the lookup only: no write within the minute
        assert me(f"Bearer {token}").status_code == 200
    ApiToken.objects.filter(pk=row.pk).update(last_used_at=first - timedelta(minutes=2))
    me(f"Bearer {token}")
    row.refresh_from_db()
    assert row.last_used_at > first - timedelta(minutes=2)


def test_a_user_may_hold_several_named_tokens_but_not_two_active_with_one_name(alice):
    token_create(user=alice, name="laptop")
    token_create(user=alice, name="ci")
    with pytest.raises(Exception, match="already have a token with this name"):
        token_create(user=alice, name="laptop")
    token_revoke(token=ApiToken.objects.get(user=alice, name="laptop"))
    token_create(user=alice, name="laptop")  # the name is free again once revoked
    assert alice.api_tokens.count() == 3


def test_session_authentication_serves_the_browsable_api_and_enforces_csrf(alice, team_namespace):
    client = APIClient(enforce_csrf_checks=True, HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(alice)
    body = client.get(f"{API}/me/").json()
    assert body["authenticated_by"] == "session" and body["token"] is None
    page = client.get(f"{API}/jobs/", HTTP_ACCEPT="text/html")
    assert page.status_code == 200 and b"Job" in page.content
    refused = client.post(f"{API}/jobs/", {"source": "nginx"}, format="json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]


# -- throttles ------------------------------------------------------------------------------


def test_requests_beyond_the_rate_get_429_with_retry_after_per_token(alice, settings):
    rates(settings, api="3/minute")
    first, second = client_for(alice), client_for(alice)
    for _ in range(3):
        assert first.get(f"{API}/me/").status_code == 200
    throttled = first.get(f"{API}/me/")
    assert throttled.status_code == 429
    assert 0 < int(throttled["Retry-After"]) <= 60
    assert "throttled" in throttled.json()["detail"]
    assert second.get(f"{API}/me/").status_code == 200  # another token, its own count


def test_job_creations_are_limited_per_user_counting_jobs_not_requests(alice, team_namespace, settings):
    rates(settings, job_create="3/minute")
    laptop, ci = client_for(alice), client_for(alice)
    batch = {"jobs": [{"source": "nginx:1"}, {"source": "nginx:2"}]}
    assert laptop.post(f"{API}/jobs/", batch, format="json").status_code == 201
    # The same job again is deduplicated, not created: it does not count.
    assert laptop.post(f"{API}/jobs/", {"source": "nginx:1"}, format="json").status_code == 200
    # Refused input does not count either.
    assert ci.post(f"{API}/jobs/", {"source": "bad tag"}, format="json").status_code == 400
    assert ci.post(f"{API}/jobs/", {"source": "nginx:3"}, format="json").status_code == 201
    throttled = ci.post(f"{API}/jobs/", {"source": "nginx:4"}, format="json")
    assert throttled.status_code == 429 and int(throttled["Retry-After"]) > 0
    assert laptop.get(f"{API}/jobs/").status_code == 200  # reading is not a creation


def test_a_batch_needs_room_for_all_its_jobs(alice, team_namespace, settings):
    rates(settings, job_create="3/minute")
    client = client_for(alice)
    assert client.post(f"{API}/jobs/", {"source": "nginx:1"}, format="json").status_code == 201
    batch = {"jobs": [{"source": f"nginx:{n}"} for n in (2, 3, 4)]}
    assert client.post(f"{API}/jobs/", batch, format="json").status_code == 429


def test_retry_counts_as_a_creation(alice, team_namespace, settings):
    rates(settings, job_create="1/minute")
    job = JobFactory(owner=alice, namespace=team_namespace, status="failed")
    client = client_for(alice)
    assert client.post(f"{API}/jobs/", {"source": "redis:7"}, format="json").status_code == 201
    assert client.post(f"{API}/jobs/{job.pk}/retry/").status_code == 429


# -- management commands --------------------------------------------------------------------


def test_create_token_prints_only_a_working_token(alice):
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "create_token", "ALICE@example.com", "--name", "ci", "--expires-days", "7", stdout=out, stderr=err
    )
    token = out.getvalue().strip()
    assert TOKEN_RE.fullmatch(token)
    assert me(f"Bearer {token}").json()["token"]["name"] == "ci"
    assert ApiToken.objects.get(name="ci").expires_at > timezone.now() + timedelta(days=6)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nobody@example.com"], "no user with the email"),
        (["alice@example.com", "--expires-days", "0"], "1 to 3650 days"),
        (["alice@example.com", "--name", " "], "Give the token a name"),
    ],
)
def test_create_token_refuses_bad_input(alice, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("create_token", *args, stdout=io.StringIO(), stderr=io.StringIO())
    assert not ApiToken.objects.exists()


def test_revoke_token_by_prefix_by_name_or_all_of_a_user(alice, bob):
    laptop, laptop_token = token_create(user=alice, name="laptop")
    token_create(user=alice, name="ci")
    token_create(user=bob, name="ci")
    out = io.StringIO()
    call_command("revoke_token", laptop_token, stdout=out)
    assert "Revoked 'laptop'" in out.getvalue()
    with pytest.raises(CommandError, match="add --user EMAIL"):
        call_command("revoke_token", "ci", stdout=io.StringIO())
    call_command("revoke_token", "ci", "--user", "alice@example.com", stdout=io.StringIO())
    assert {t.name for t in ApiToken.objects.filter(revoked_at__isnull=True)} == {"ci"}  # bob's
    with pytest.raises(CommandError, match="no active token matches"):
        call_command("revoke_token", laptop.prefix, stdout=io.StringIO())
    out = io.StringIO()
    call_command("revoke_token", "--all", "--user", "bob@example.com", stdout=out)
    assert "1 token(s) revoked" in out.getvalue()
    assert me(f"Bearer {laptop_token}").status_code == 401


# -- the API tokens page --------------------------------------------------------------------


def test_the_tokens_page_needs_a_signed_in_user(client):
    response = client.get("/accounts/tokens/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_tokens_page_shows_a_new_token_once_and_it_works(client, alice):
    client.force_login(alice)
    response = client.post(
        "/accounts/tokens/", {"name": "laptop", "expires": "30"}, HTTP_ACCEPT_LANGUAGE="en"
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"] or "no-cache" in response["Cache-Control"]
    token = re.search(r'value="(isk_[^"]+)"', response.content.decode())[1]
    assert me(f"Bearer {token}").status_code == 200
    again = client.get("/accounts/tokens/").content.decode()
    assert token not in again and f"isk_{token[4:12]}_" in again and "laptop" in again
    assert not re.search(r"<script(?![^>]*\ssrc=)", again)  # the CSP allows no inline script


def test_the_tokens_page_refuses_a_duplicate_name(client, alice):
    token_create(user=alice, name="laptop")
    client.force_login(alice)
    response = client.post("/accounts/tokens/", {"name": "laptop", "expires": ""}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400
    assert "already have a token with this name" in response.content.decode()
    assert alice.api_tokens.count() == 1


def test_a_user_revokes_their_own_token_and_nobody_elses(client, alice, bob):
    mine, token = token_create(user=alice, name="laptop")
    bobs, _ = token_create(user=bob, name="laptop")
    client.force_login(alice)
    assert client.post(f"/accounts/tokens/{bobs.pk}/revoke/").status_code == 404
    assert client.get(f"/accounts/tokens/{mine.pk}/revoke/").status_code == 405
    response = client.post(f"/accounts/tokens/{mine.pk}/revoke/")
    assert response.status_code == 302
    assert me(f"Bearer {token}").json()["detail"] == "This API token was revoked."
    bobs.refresh_from_db()
    assert bobs.revoked_at is None


def test_admins_list_and_revoke_tokens_but_never_see_or_make_secrets(client, staff, alice):
    row, token = token_create(user=alice, name="laptop")
    client.force_login(staff)
    page = client.get("/admin/accounts/apitoken/")
    assert page.status_code == 200 and row.prefix in page.content.decode()
    assert row.digest not in client.get(f"/admin/accounts/apitoken/{row.pk}/change/").content.decode()
    assert client.get("/admin/accounts/apitoken/add/").status_code == 403
    client.post("/admin/accounts/apitoken/", {"action": "revoke", "_selected_action": [row.pk]})
    assert me(f"Bearer {token}").json()["detail"] == "This API token was revoked."


@needs_postgresql
@pytest.mark.django_db(transaction=True)
def test_concurrent_creations_cannot_exceed_the_limit(alice, team_namespace, settings):
    # DRF's own throttles read the history, then write it back: requests of the same instant
    # all saw room. Taking places is now one step (a Lua script in Redis).
    rates(settings, job_create="3/minute")
    racers = 8
    clients = [client_for(alice) for _ in range(racers)]
    answers = at_once(
        lambda n: clients[n].post(f"{API}/jobs/", {"source": f"nginx:{n}"}, format="json").status_code, racers
    )
    assert sorted(answers) == [201] * 3 + [429] * (racers - 3)
    assert SyncJob.objects.filter(owner=alice).count() == 3


def test_places_of_refused_and_deduplicated_jobs_are_given_back_at_once(alice, team_namespace, settings):
    rates(settings, job_create="2/minute")
    client = client_for(alice)
    for _ in range(5):  # each asks for a place, and gives it back when nothing is created
        assert client.post(f"{API}/jobs/", {"source": "bad tag"}, format="json").status_code == 400
    batch = {"jobs": [{"source": "nginx:1"}, {"source": "nginx:1:bad"}]}
    assert client.post(f"{API}/jobs/", batch, format="json").status_code == 400  # all or nothing
    assert client.post(f"{API}/jobs/", {"source": "nginx:1"}, format="json").status_code == 201
    assert client.post(f"{API}/jobs/", {"source": "nginx:1"}, format="json").status_code == 200  # deduplicated
    assert client.post(f"{API}/jobs/", {"source": "nginx:2"}, format="json").status_code == 201
    assert client.post(f"{API}/jobs/", {"source": "nginx:3"}, format="json").status_code == 429


@pytest.mark.parametrize("backend", ["redis", "local memory"])
def test_a_window_gives_its_places_to_exactly_as_many_concurrent_takers(settings, backend):
    if backend == "redis":
        if not settings.REDIS_URL:  # make test sets it; in CI a skip would hide a broken setup
            (pytest.fail if os.environ.get("CI") else pytest.skip)("REDIS_URL is not set")
        location = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": settings.REDIS_URL}
    else:
        location = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    settings.CACHES = {"default": {**location, "KEY_PREFIX": f"test-{uuid.uuid4().hex}"}}
    window = Window("race", limit=3, period=60)
    racers = 12
    results = at_once(lambda _n: window.take(1, now=time.time()), racers)
    taken = [reservation for reservation, _wait in results if reservation]
    assert len(results) == racers and len(taken) == 3
    assert all(0 <= wait <= 60 for reservation, wait in results if reservation is None)
    window.give_back(taken[0], 1)  # one creation did not happen after all
    assert window.take(1, now=time.time())[0] is not None
    assert window.take(1, now=time.time())[0] is None


def test_a_batch_larger_than_the_creation_limit_is_refused_with_the_reason(alice, team_namespace, settings):
    rates(settings, job_create="2/minute")
    batch = {"jobs": [{"source": f"nginx:{n}"} for n in range(3)]}
    response = client_for(alice).post(f"{API}/jobs/", batch, format="json")
    assert response.status_code == 400
    assert "allows 2 job creations per 60 s, so a batch may hold at most 2 jobs" in response.json()["jobs"][0]
    assert not SyncJob.objects.exists()


def test_a_crash_gives_the_creation_places_back(alice, team_namespace, settings, monkeypatch):
    from jobs.api import views

    rates(settings, job_create="1/minute")
    client = client_for(alice)
    client.raise_request_exception = False

    def crash(**kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(views.submit, "submit_all", crash)
    assert client.post(f"{API}/jobs/", {"source": "nginx:1"}, format="json").status_code == 500
    monkeypatch.undo()
    assert client.post(f"{API}/jobs/", {"source": "nginx:1"}, format="json").status_code == 201


def test_unreadable_bodies_count_against_the_request_limit(alice, settings):
    rates(settings, api="2/minute")
    client = client_for(alice)
    for _ in range(2):
        bad = client.post(f"{API}/jobs/", "{not json", content_type="application/json")
        assert bad.status_code == 400 and "JSON parse error" in bad.json()["detail"]
    assert client.get(f"{API}/me/").status_code == 429
