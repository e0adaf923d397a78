"""The job list and the status endpoint its rows poll: everyone sees only what is theirs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from jobs import pagination
from jobs.models import SyncJob
from jobs.services import job_transition
from tests.factories import JobFactory, NamespaceFactory
from tests.portal_fixtures import fresh_limits  # noqa: F401 (autouse)

HOME = reverse("home")
STATUS = reverse("jobs:status")


@pytest.fixture
def jobs(alice, bob, team_namespace):
    """Alice: a running nginx copy and a succeeded redis sync; bob: one copy of his own."""
    return {
        "alice_nginx": JobFactory(owner=alice, namespace=team_namespace, status="running"),
        "alice_redis": JobFactory(
            owner=alice, namespace=team_namespace, kind="sync", source="docker.io/bitnami/redis",
            destination=f"{team_namespace}/redis", status="succeeded",
        ),
        "bob_alpine": JobFactory(
            owner=bob, namespace=team_namespace, source="docker.io/library/alpine:3.20",
            destination=f"{team_namespace}/alpine:3.20",
        ),
    }


def listed(response) -> list[int]:
    return [row[0].pk for row in response.context["rows"]]


@pytest.mark.django_db
def test_anonymous_is_sent_to_sign_in(client):
    response = client.get(HOME)
    assert response.status_code == 302 and response["Location"].startswith(reverse("account_login"))


@pytest.mark.django_db
def test_each_user_sees_only_their_own_jobs_newest_first(client, alice, bob, charlie, jobs):
    client.force_login(alice)
    assert listed(client.get(HOME)) == [jobs["alice_redis"].pk, jobs["alice_nginx"].pk]
    client.force_login(bob)
    body = client.get(HOME).content.decode()
    assert "alpine" in body and "nginx" not in body
    client.force_login(charlie)
    assert listed(client.get(HOME)) == []


@pytest.mark.django_db
def test_a_teammate_cannot_widen_the_list_to_everyone(client, bob, jobs):
    client.force_login(bob)
    assert listed(client.get(HOME, {"scope": "all"})) == [jobs["bob_alpine"].pk]


@pytest.mark.django_db
def test_staff_see_their_own_by_default_and_can_switch_to_everyone(client, staff, jobs):
    client.force_login(staff)
    assert listed(client.get(HOME)) == []
    everyone = client.get(HOME, {"scope": "all"}, HTTP_ACCEPT_LANGUAGE="en")
    assert set(listed(everyone)) == {job.pk for job in jobs.values()}
    body = everyone.content.decode()
    assert "Everyone&#x27;s jobs" in body and "bob@example.com" in body


@pytest.mark.django_db
def test_rows_show_status_badges_and_elapsed_time(client, alice, jobs):
    SyncJob.objects.filter(pk=jobs["alice_nginx"].pk).update(created_at=timezone.now() - timedelta(minutes=3, seconds=5))
    client.force_login(alice)
    body = client.get(HOME, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'class="badge badge-running" data-role="badge">Running<' in body
    assert 'class="badge badge-succeeded" data-role="badge">Succeeded<' in body
    assert "3 min 05 s" in body
    assert f'data-job-id="{jobs["alice_nginx"].pk}" data-active="1"' in body
    assert f'data-job-id="{jobs["alice_redis"].pk}" data-active="0"' in body


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"q": "redis"}, ["alice_redis"]),
        ({"q": "NGINX"}, ["alice_nginx"]),
        ({"q": "team/redis"}, ["alice_redis"]),  # the destination is searched too
        ({"status": "succeeded"}, ["alice_redis"]),
        ({"status": "active"}, ["alice_nginx"]),
        ({"kind": "sync"}, ["alice_redis"]),
        ({"kind": "copy", "status": "running"}, ["alice_nginx"]),
        ({"q": "nothing-like-this"}, []),
    ],
)
def test_search_and_filters(client, alice, jobs, params, expected):
    client.force_login(alice)
    assert listed(client.get(HOME, params)) == [jobs[name].pk for name in expected]


@pytest.mark.django_db
def test_filter_by_namespace(client, alice, jobs):
    other = NamespaceFactory(namespace="other", members=[alice])
    elsewhere = JobFactory(owner=alice, namespace=other)
    client.force_login(alice)
    assert listed(client.get(HOME, {"namespace": other.pk})) == [elsewhere.pk]


@pytest.mark.django_db
def test_a_bad_filter_is_reported_and_ignored(client, alice, jobs):
    client.force_login(alice)
    page = client.get(HOME, {"status": "exploded", "q": "redis"}, HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200
    assert "status" in page.context["form"].errors
    assert listed(page) == [jobs["alice_redis"].pk]


@pytest.mark.django_db
def test_pagination_keeps_the_filters(client, alice, team_namespace):
    for n in range(30):
        JobFactory(owner=alice, namespace=team_namespace, source=f"docker.io/library/nginx:1.{n}", status="failed")
    client.force_login(alice)
    first = client.get(HOME, {"status": "failed"})
    assert len(listed(first)) == 25
    assert "?status=failed&amp;page=2" in first.content.decode()
    second = client.get(HOME, {"status": "failed", "page": 2})
    assert len(listed(second)) == 5
    assert listed(client.get(HOME, {"page": "999"})) == listed(second)  # past the end: the last page


@pytest.mark.django_db
def test_past_the_count_limit_the_pages_say_so_and_all_stay_reachable(client, staff, monkeypatch):
    monkeypatch.setattr(pagination, "COUNT_LIMIT", 30)  # the list counts at most 30 jobs
    everyone = JobFactory.create_batch(60, status="succeeded")
    client.force_login(staff)
    first = client.get(HOME, {"scope": "all"}, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Page 1 of 2+" in first and "30+ jobs, newest first" in first
    seen = listed(client.get(HOME, {"scope": "all"}))
    seen += listed(client.get(HOME, {"scope": "all", "page": 2}))
    third = client.get(HOME, {"scope": "all", "page": 3})
    assert "第 3 / 3 页" in third.content.decode()  # counted as far as the asked page needs
    seen += listed(third)
    assert sorted(seen) == sorted(job.pk for job in everyone)
    chinese = client.get(HOME, {"scope": "all"}, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "第 1 / 2+ 页" in chinese and "共 30+ 个任务" in chinese
    newest = listed(client.get(HOME, {"scope": "all"}))
    for odd in ("0", "-1", "last", "abc"):  # not a page: the first one, not the last counted one
        assert listed(client.get(HOME, {"scope": "all", "page": odd})) == newest
    far = client.get(HOME, {"scope": "all", "page": "99999999999"})
    assert listed(far) == listed(third) and "第 3 / 3 页" in far.content.decode()  # counted to the end


@pytest.mark.django_db
def test_the_list_page_loads_the_poller_only_as_a_file(client, alice, jobs):
    client.force_login(alice)
    body = client.get(HOME).content.decode()
    assert f'data-status-url="{STATUS}"' in body
    assert "/static/js/imagesync.js" in body


# -- the status endpoint ---------------------------------------------------------------------


@pytest.mark.django_db
def test_status_answers_for_the_callers_own_jobs(client, alice, jobs):
    client.force_login(alice)
    ids = f"{jobs['alice_nginx'].pk},{jobs['alice_redis'].pk},{jobs['bob_alpine'].pk},999999"
    data = client.get(STATUS, {"ids": ids}, HTTP_ACCEPT_LANGUAGE="en").json()
    by_id = {item["id"]: item for item in data["jobs"]}
    assert set(by_id) == {jobs["alice_nginx"].pk, jobs["alice_redis"].pk}  # not bob's, not unknown
    assert by_id[jobs["alice_nginx"].pk]["status"] == "running"
    assert by_id[jobs["alice_nginx"].pk]["label"] == "Running"
    assert by_id[jobs["alice_nginx"].pk]["active"] is True
    assert by_id[jobs["alice_redis"].pk]["active"] is False
    assert data["active"] is True


@pytest.mark.django_db
def test_status_follows_a_job_to_its_end(client, alice, jobs):
    client.force_login(alice)
    job = jobs["alice_nginx"]
    job_transition(job=job, to="succeeded", actor="webhook")
    data = client.get(STATUS, {"ids": str(job.pk)}, HTTP_ACCEPT_LANGUAGE="zh-hans").json()
    assert data["active"] is False
    assert data["jobs"][0]["status"] == "succeeded"
    assert data["jobs"][0]["label"] == "成功"


@pytest.mark.django_db
def test_status_lets_staff_follow_anyone(client, staff, jobs):
    client.force_login(staff)
    data = client.get(STATUS, {"ids": str(jobs["bob_alpine"].pk)}).json()
    assert [item["id"] for item in data["jobs"]] == [jobs["bob_alpine"].pk]


@pytest.mark.django_db
def test_status_tells_charlie_nothing(client, charlie, jobs):
    client.force_login(charlie)
    ids = ",".join(str(job.pk) for job in jobs.values())
    assert client.get(STATUS, {"ids": ids}).json() == {"jobs": [], "active": False}


@pytest.mark.django_db
def test_status_asks_anonymous_callers_to_sign_in(client, jobs):
    response = client.get(STATUS, {"ids": str(jobs["alice_nginx"].pk)})
    assert response.status_code == 401 and "error" in response.json()


@pytest.mark.django_db
@pytest.mark.parametrize("ids", ["", "1,x", "1;2", "-1", "１", ",".join(["1"] * 101), "9" * 30])
def test_status_refuses_malformed_ids(client, alice, ids):
    client.force_login(alice)
    response = client.get(STATUS, {"ids": ids})
    assert response.status_code == 400 and "error" in response.json()


@pytest.mark.django_db
def test_status_is_get_only_and_never_cached(client, alice, jobs):
    client.force_login(alice)
    assert client.post(STATUS, {"ids": "1"}).status_code == 405
    response = client.get(STATUS, {"ids": str(jobs["alice_nginx"].pk)})
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]
