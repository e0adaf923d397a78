"""/api/v1/jobs/: every action with the personas (owner alice, teammate bob, outsider charlie,
anonymous, staff)."""

from __future__ import annotations

import pytest

from jobs import pagination
from jobs.models import SyncJob
from jobs.services import job_create, job_transition
from tests.api_support import API, client_for, fresh_throttles  # noqa: F401
from tests.factories import JobFactory, NamespaceFactory

HOST = "registry.cn-hangzhou.aliyuncs.com"
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_throttles")]


def post(user, body, path="jobs/"):
    return client_for(user).post(f"{API}/{path}", body, format="json")


def finished(job: SyncJob, status: str = "failed") -> SyncJob:
    SyncJob.objects.filter(pk=job.pk).update(status=status)
    job.refresh_from_db()
    return job


# -- create ---------------------------------------------------------------------------------


def test_it_creates_a_copy_with_the_portals_default_destination(alice, team_namespace):
    response = post(alice, {"source": "nginx:1.27", "namespace": team_namespace.pk})
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "pending" and body["kind"] == "copy" and body["deduplicated"] is False
    assert body["source"] == "docker.io/library/nginx:1.27"
    assert body["destination"] == f"{HOST}/team/nginx:1.27"
    assert body["namespace"] == {
        "id": team_namespace.pk,
        "registry": HOST,
        "namespace": "team",
        "name": f"{HOST}/team",
    }
    assert body["pull_command"] == f"docker pull {HOST}/team/nginx:1.27"
    assert SyncJob.objects.get(pk=body["id"]).owner == alice


@pytest.mark.parametrize(
    ("extra", "destination"),
    [
        ({"namespace": f"{HOST}/team"}, f"{HOST}/team/nginx:1.27"),
        ({"namespace": "team"}, f"{HOST}/team/nginx:1.27"),
        ({"destination": "team/web:stable"}, f"{HOST}/team/web:stable"),
        ({"destination": f"{HOST}/team/web"}, f"{HOST}/team/web:1.27"),
        ({}, f"{HOST}/team/nginx:1.27"),  # alice's only namespace
    ],
)
def test_the_namespace_is_an_id_a_host_path_a_name_or_read_from_the_destination(
    alice, team_namespace, extra, destination
):
    response = post(alice, {"source": "nginx:1.27", **extra})
    assert response.status_code == 201, response.json()
    assert response.json()["destination"] == destination


def test_a_bare_namespace_name_must_be_unambiguous(alice, team_namespace):
    NamespaceFactory(registry="registry.cn-beijing.aliyuncs.com", namespace="team", members=[alice])
    response = post(alice, {"source": "nginx:1", "namespace": "team"})
    assert response.status_code == 400
    assert "several of your namespaces are named team" in response.json()["namespace"][0]
    response = post(alice, {"source": "nginx:1"})
    assert "say which" in response.json()["namespace"][0]
    assert post(alice, {"source": "nginx:1", "namespace": f"{HOST}/team"}).status_code == 201


def test_without_namespace_or_destination_the_users_default_namespace_is_used(alice, team_namespace):
    beijing = NamespaceFactory(registry="registry.cn-beijing.aliyuncs.com", namespace="team", members=[alice])
    alice.default_namespace = beijing
    alice.save()
    response = post(alice, {"source": "nginx:1"})
    assert response.status_code == 201
    assert response.json()["namespace"]["id"] == beijing.pk


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"source": "nginx:1.27\n"}, "source", "whitespace or a control character"),
        ({"source": "nginx:-bad"}, "source", "tag '-bad' is invalid"),
        ({"source": "NGINX"}, "source", "lower case"),
        ({"source": ""}, "source", "may not be blank"),
        ({}, "source", "required"),
        ({"source": "nginx", "kind": "move"}, "kind", "not a valid choice"),
        ({"source": "nginx", "namespace": 999999}, "namespace", "no namespace with id 999999"),
        ({"source": "nginx", "namespace": "nope"}, "namespace", "no namespace named nope"),
        ({"source": "nginx", "namespace": True}, "namespace", "Give a namespace id"),
        # str.isdigit() is true for "²", which int() refuses: it must not become a 500.
        ({"source": "nginx", "namespace": "²"}, "namespace", "no namespace named ²"),
        ({"source": "nginx", "destination": "other/nginx:1"}, "destination", "no namespace named other"),
        ({"source": "nginx", "destination": "team/a/b:1"}, "destination", "one level deep"),
        ({"source": "nginx", "tag_include": "x"}, "tag_include", "apply to a sync"),
        (
            {"source": "redis", "kind": "sync", "tag_include": "("},
            "tag_include",
            "not a valid regular expression",
        ),
    ],
)
def test_bad_input_gets_a_400_keyed_by_field_and_creates_nothing(alice, team_namespace, body, field, message):
    response = post(alice, body)
    assert response.status_code == 400, response.json()
    assert message in " ".join(response.json()[field])
    assert not SyncJob.objects.exists()


def test_a_body_that_is_not_an_object_is_refused(alice, team_namespace):
    response = post(alice, ["nginx"])
    assert response.status_code == 400
    assert "send one job as an object" in response.json()["non_field_errors"][0]
    malformed = client_for(alice).post(f"{API}/jobs/", "{", content_type="application/json")
    assert malformed.status_code == 400 and "JSON parse error" in malformed.json()["detail"]


def test_an_outsider_cannot_push_into_the_team_namespace(charlie, team_namespace):
    response = post(charlie, {"source": "nginx", "namespace": team_namespace.pk})
    assert response.status_code == 400
    assert "no namespace with id" in response.json()["namespace"][0]
    assert not SyncJob.objects.exists()


def test_a_sync_goes_to_the_last_path_component_with_filters(alice, team_namespace):
    response = post(
        alice,
        {
            "kind": "sync",
            "source": "bitnami/redis:7",
            "namespace": "team",
            "tag_include": r"^7\.",
            "tag_exclude": "-rc",
        },
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["source"], body["destination"]) == ("docker.io/bitnami/redis", f"{HOST}/team/redis")
    assert (body["tag_include"], body["tag_exclude"], body["pull_command"]) == (r"^7\.", "-rc", None)
    mismatch = post(alice, {"kind": "sync", "source": "bitnami/redis", "destination": "team/other"})
    assert "always goes to" in mismatch.json()["destination"][0]


def test_a_copy_that_would_mix_two_images_is_refused_until_answered(alice, team_namespace):
    first = post(alice, {"source": "redis:7", "namespace": "team"})
    assert first.status_code == 201 and first.json()["destination"] == f"{HOST}/team/redis:7"
    clash = post(alice, {"source": "bitnami/redis:7", "namespace": "team"})
    assert clash.status_code == 400
    (message,) = clash.json()["on_clash"]
    assert "bitnami/redis:7 would be copied into a repository that holds another image" in message
    assert '"rename" to copy it to team/bitnami-redis:7' in message
    assert SyncJob.objects.count() == 1
    renamed = post(alice, {"source": "bitnami/redis:7", "namespace": "team", "on_clash": "rename"})
    assert renamed.status_code == 201 and renamed.json()["destination"] == f"{HOST}/team/bitnami-redis:7"
    kept = post(alice, {"source": "bitnami/redis:8", "namespace": "team", "on_clash": "keep"})
    assert kept.status_code == 201 and kept.json()["destination"] == f"{HOST}/team/redis:8"
    sync = post(alice, {"kind": "sync", "source": "bitnami/redis", "namespace": "team", "on_clash": "rename"})
    assert sync.status_code == 400 and '"on_clash": "keep" to mix them' in sync.json()["on_clash"][0]
    bad = post(alice, {"source": "bitnami/redis:9", "namespace": "team", "on_clash": "overwrite"})
    assert bad.status_code == 400 and "on_clash" in bad.json()


def test_a_batch_reports_a_clash_between_its_own_items_by_index(alice, team_namespace):
    body = {"jobs": [{"source": "redis:7", "namespace": "team"}, {"source": "bitnami/redis:7", "namespace": "team"}]}
    refused = post(alice, body)
    assert refused.status_code == 400
    assert list(refused.json()["jobs"]) == ["1"] and "on_clash" in refused.json()["jobs"]["1"]
    assert not SyncJob.objects.exists()
    body["jobs"][1]["on_clash"] = "rename"
    created = post(alice, body)
    assert created.status_code == 201
    assert [job["destination"] for job in created.json()["jobs"]] == [
        f"{HOST}/team/redis:7",
        f"{HOST}/team/bitnami-redis:7",
    ]


def test_an_identical_active_job_is_returned_with_200_and_deduplicated(alice, team_namespace):
    first = post(alice, {"source": "nginx:1.27"}).json()
    again = post(alice, {"source": "docker.io/library/nginx:1.27", "namespace": "team"})
    assert again.status_code == 200
    assert again.json()["id"] == first["id"] and again.json()["deduplicated"] is True
    assert SyncJob.objects.count() == 1


def test_a_batch_creates_every_job_in_one_answer(alice, team_namespace):
    response = post(
        alice, {"jobs": [{"source": "nginx:1"}, {"source": "redis", "kind": "sync"}, {"source": "nginx:1"}]}
    )
    assert response.status_code == 201, response.json()
    jobs = response.json()["jobs"]
    assert [j["destination"] for j in jobs] == [
        f"{HOST}/team/nginx:1",
        f"{HOST}/team/redis",
        f"{HOST}/team/nginx:1",
    ]
    assert [j["deduplicated"] for j in jobs] == [False, False, True]
    assert SyncJob.objects.count() == 2


def test_a_batch_with_one_bad_item_creates_nothing_and_names_the_item(
    alice, team_namespace, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = post(
            alice, {"jobs": [{"source": "nginx:1"}, {"source": "redis:7"}, {"source": "bad tag"}, "x"]}
        )
    assert response.status_code == 400
    errors = response.json()["jobs"]
    assert set(errors) == {"2", "3"}
    assert "whitespace" in errors["2"]["source"][0]
    assert "Expected a dictionary" in errors["3"]["non_field_errors"][0]
    assert not SyncJob.objects.exists()
    assert callbacks == []  # nothing was queued for dispatch either


@pytest.mark.parametrize(
    ("jobs", "message"), [([], "at least 1"), ([{"source": "nginx"}] * 11, "no more than 10")]
)
def test_a_batch_holds_one_to_ten_jobs(alice, team_namespace, jobs, message):
    response = post(alice, {"jobs": jobs})
    assert response.status_code == 400
    assert message in response.json()["jobs"][0]


def test_anonymous_requests_get_401_with_a_bearer_challenge(team_namespace):
    response = client_for(None).post(f"{API}/jobs/", {"source": "nginx"}, format="json")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json() == {"detail": "Authentication credentials were not provided."}


# -- list -----------------------------------------------------------------------------------


@pytest.fixture
def alices_jobs(alice, bob, team_namespace):
    a1 = JobFactory(owner=alice, namespace=team_namespace, source="docker.io/library/nginx:1")
    a2 = JobFactory(
        owner=alice,
        namespace=team_namespace,
        kind="sync",
        source="docker.io/bitnami/redis",
        destination=f"{HOST}/team/redis",
        status="succeeded",
    )
    b1 = JobFactory(owner=bob, namespace=team_namespace, source="docker.io/library/nginx:2")
    return a1, a2, b1


def ids(response) -> list[int]:
    assert response.status_code == 200, response.json()
    return [job["id"] for job in response.json()["results"]]


def test_the_list_holds_only_the_callers_jobs(alice, bob, charlie, alices_jobs):
    a1, a2, b1 = alices_jobs
    assert ids(client_for(alice).get(f"{API}/jobs/")) == [a2.pk, a1.pk]
    assert ids(client_for(bob).get(f"{API}/jobs/")) == [b1.pk]
    assert ids(client_for(charlie).get(f"{API}/jobs/")) == []
    assert client_for(None).get(f"{API}/jobs/").status_code == 401


def test_staff_see_their_own_jobs_unless_they_ask_for_all_or_one_owner(staff, alice, alices_jobs):
    a1, a2, b1 = alices_jobs
    client = client_for(staff)
    assert ids(client.get(f"{API}/jobs/")) == []
    assert set(ids(client.get(f"{API}/jobs/", {"all": "true"}))) == {a1.pk, a2.pk, b1.pk}
    assert ids(client.get(f"{API}/jobs/", {"owner": "ALICE@example.com"})) == [a2.pk, a1.pk]


@pytest.mark.parametrize("params", [{"all": "true"}, {"owner": "bob@example.com"}])
def test_others_may_not_ask_for_everyones_jobs(alice, alices_jobs, params):
    response = client_for(alice).get(f"{API}/jobs/", params)
    assert response.status_code == 403
    assert "only staff" in response.json()["detail"]


def test_the_list_filters_by_status_kind_namespace_search_and_id(alice, alices_jobs, team_namespace):
    a1, a2, _ = alices_jobs
    client = client_for(alice)
    assert ids(client.get(f"{API}/jobs/", {"status": "succeeded"})) == [a2.pk]
    assert ids(client.get(f"{API}/jobs/?status=pending&status=failed")) == [a1.pk]
    assert ids(client.get(f"{API}/jobs/", {"status": "active"})) == [a1.pk]
    assert ids(client.get(f"{API}/jobs/", {"status": "finished,pending"})) == [a2.pk, a1.pk]
    assert ids(client.get(f"{API}/jobs/", {"kind": "sync"})) == [a2.pk]
    assert ids(client.get(f"{API}/jobs/", {"namespace": team_namespace.pk})) == [a2.pk, a1.pk]
    assert ids(client.get(f"{API}/jobs/", {"namespace": f"{HOST}/team"})) == [a2.pk, a1.pk]
    assert ids(client.get(f"{API}/jobs/", {"namespace": "other"})) == []
    assert ids(client.get(f"{API}/jobs/", {"namespace": "²"})) == []
    assert ids(client.get(f"{API}/jobs/", {"search": "REDIS"})) == [a2.pk]
    assert ids(client.get(f"{API}/jobs/", {"id": f"{a1.pk},{alices_jobs[2].pk}"})) == [a1.pk]  # not bob's


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "done"}, "status"),
        ({"kind": "move"}, "kind"),
        ({"id": "x"}, "id"),
        ({"owner": "not-an-email"}, "owner"),
    ],
)
def test_bad_filters_get_a_400_naming_the_parameter(alice, params, field):
    response = client_for(alice).get(f"{API}/jobs/", params)
    assert response.status_code == 400
    assert field in response.json()


def test_the_list_is_paginated(alice, team_namespace):
    JobFactory.create_batch(3, owner=alice, namespace=team_namespace, status="failed")
    client = client_for(alice)
    page = client.get(f"{API}/jobs/", {"page_size": 2}).json()
    assert page["count"] == 3 and len(page["results"]) == 2 and page["next"]
    assert len(client.get(f"{API}/jobs/", {"page_size": 2, "page": 2}).json()["results"]) == 1
    assert client.get(f"{API}/jobs/", {"page": 9}).status_code == 404
    assert page["count_exact"] is True


def test_past_the_count_limit_the_count_is_a_lower_bound_and_every_page_is_reachable(
    alice, team_namespace, monkeypatch
):
    monkeypatch.setattr(pagination, "COUNT_LIMIT", 5)
    JobFactory.create_batch(12, owner=alice, namespace=team_namespace, status="failed")
    client = client_for(alice)
    first = client.get(f"{API}/jobs/", {"page_size": 2}).json()
    assert (first["count"], first["count_exact"]) == (5, False)
    seen = [job["id"] for job in first["results"]]
    url = first["next"]
    while url:  # follows next links to the very last job
        page = client.get(url).json()
        assert page["count_exact"] is (page["count"] == 12)
        seen += [job["id"] for job in page["results"]]
        url = page["next"]
    assert len(seen) == len(set(seen)) == 12
    assert sorted(seen, reverse=True) == seen  # newest first, no job twice or lost
    last = client.get(f"{API}/jobs/", {"page_size": 2, "page": "last"}).json()
    assert (last["count"], last["count_exact"], len(last["results"])) == (12, True, 2)
    beyond = client.get(f"{API}/jobs/", {"page_size": 2, "page": 7})
    assert beyond.status_code == 404 and "Invalid page" in beyond.json()["detail"]
    exact = client.get(f"{API}/jobs/", {"page_size": 2, "status": "failed", "search": "nomatch"}).json()
    assert (exact["count"], exact["count_exact"]) == (0, True)
    monkeypatch.setattr(pagination, "COUNT_LIMIT", 12)  # exactly as many jobs as the limit
    at_limit = client.get(f"{API}/jobs/", {"page_size": 2}).json()
    assert (at_limit["count"], at_limit["count_exact"]) == (12, True)


def test_the_list_takes_a_constant_number_of_queries(alice, team_namespace, django_assert_max_num_queries):
    client = client_for(alice)
    JobFactory(owner=alice, namespace=team_namespace)
    client.get(f"{API}/jobs/")  # the token's last_used_at is written once, outside the count
    for ns in NamespaceFactory.create_batch(5, members=[alice]):
        for tag in range(5):
            JobFactory(owner=alice, namespace=ns, source=f"docker.io/library/nginx:{tag}")
    # token lookup, count, page (jobs joined with namespace and owner)
    with django_assert_max_num_queries(3):
        response = client.get(f"{API}/jobs/", {"page_size": 100})
    assert len(response.json()["results"]) == 26


# -- retrieve, delete, cancel, retry --------------------------------------------------------


def test_the_owner_and_staff_see_a_job_with_its_history_and_tag_results(
    alice, bob, charlie, staff, team_namespace
):
    job, _ = job_create(owner=alice, namespace=team_namespace, kind="sync", source="bitnami/redis")
    job_transition(job=job, to="dispatching", actor="worker", reason="dispatching sync.yml")
    SyncJob.objects.filter(pk=job.pk).update(
        result={
            "copied": [{"tag": "7.2", "digest": "sha256:" + "a" * 64}],
            "skipped": [{"tag": "7.0", "digest": "sha256:" + "b" * 64}],
            "failed": [{"tag": "6.2", "reason": "manifest unknown"}, "garbage"],
            "not_attempted": ["6.0"],
        }
    )
    path = f"{API}/jobs/{job.pk}/"
    body = client_for(alice).get(path).json()
    assert [(t["from_status"], t["to_status"], t["actor"]) for t in body["transitions"]] == [
        ("pending", "pending", "alice@example.com"),
        ("pending", "dispatching", "worker"),
    ]
    assert [(t["tag"], t["outcome"]) for t in body["tags"]] == [
        ("7.2", "copied"),
        ("7.0", "skipped"),
        ("6.2", "failed"),
        ("6.0", "not_attempted"),
    ]
    assert body["tags"][2]["reason"] == "manifest unknown"
    assert client_for(staff).get(path).status_code == 200
    for outsider in (bob, charlie):
        response = client_for(outsider).get(path)
        assert response.status_code == 404 and response.json() == {"detail": "Not found."}
    assert client_for(None).get(path).status_code == 401
    assert client_for(alice).get(f"{API}/jobs/99999999999999999999/").status_code == 404


def test_retrieve_takes_a_constant_number_of_queries(alice, team_namespace, django_assert_max_num_queries):
    job, _ = job_create(owner=alice, namespace=team_namespace, kind="copy", source="nginx")
    for _ in range(20):
        job_transition(job=job, to="dispatching", actor="worker")
        job_transition(job=job, to="pending", actor="worker")
    client = client_for(alice)
    client.get(f"{API}/jobs/{job.pk}/")
    with django_assert_max_num_queries(3):  # token, job with namespace and owner, transitions
        response = client.get(f"{API}/jobs/{job.pk}/")
    assert len(response.json()["transitions"]) == 41


def test_only_the_owner_or_staff_delete_a_finished_job(alice, bob, staff, team_namespace):
    active = JobFactory(owner=alice, namespace=team_namespace)
    done = JobFactory(
        owner=alice, namespace=team_namespace, source="docker.io/library/a:1", status="succeeded"
    )
    response = client_for(alice).delete(f"{API}/jobs/{active.pk}/")
    assert response.status_code == 409 and "cancel it first" in response.json()["detail"]
    assert client_for(bob).delete(f"{API}/jobs/{done.pk}/").status_code == 404
    assert client_for(alice).delete(f"{API}/jobs/{done.pk}/").status_code == 204
    assert not SyncJob.objects.filter(pk=done.pk).exists()
    assert client_for(staff).delete(f"{API}/jobs/{active.pk}/").status_code == 409


def test_cancel_moves_a_pending_job_and_refuses_a_finished_one(alice, charlie, team_namespace):
    job, _ = job_create(owner=alice, namespace=team_namespace, kind="copy", source="nginx")
    assert client_for(charlie).post(f"{API}/jobs/{job.pk}/cancel/").status_code == 404
    response = client_for(alice).post(f"{API}/jobs/{job.pk}/cancel/")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert job.transitions.last().actor == "alice@example.com"
    again = client_for(alice).post(f"{API}/jobs/{job.pk}/cancel/")
    assert again.status_code == 409 and "already finished" in again.json()["detail"]


def test_cancelling_a_running_job_asks_github_to_cancel_its_run(alice, team_namespace):
    job = JobFactory(owner=alice, namespace=team_namespace, status="running", github_run_id=42)
    body = client_for(alice).post(f"{API}/jobs/{job.pk}/cancel/").json()
    assert body["status"] == "running" and body["cancel_requested_at"]


def test_retry_starts_a_new_job_for_a_failed_one_only(alice, bob, team_namespace):
    job, _ = job_create(owner=alice, namespace=team_namespace, kind="copy", source="nginx:1")
    refused = client_for(alice).post(f"{API}/jobs/{job.pk}/retry/")
    assert refused.status_code == 409 and "only a failed" in refused.json()["detail"]
    finished(job)
    assert client_for(bob).post(f"{API}/jobs/{job.pk}/retry/").status_code == 404
    response = client_for(alice).post(f"{API}/jobs/{job.pk}/retry/")
    assert response.status_code == 201, response.json()
    new = response.json()
    assert new["id"] != job.pk and new["status"] == "pending" and new["destination"] == job.destination
    again = client_for(alice).post(f"{API}/jobs/{job.pk}/retry/")
    assert again.status_code == 200 and again.json()["id"] == new["id"] and again.json()["deduplicated"]


def test_retry_is_refused_once_the_owner_left_the_namespace(alice, team_namespace):
    job = finished(JobFactory(owner=alice, namespace=team_namespace))
    team_namespace.members.remove(alice)
    response = client_for(alice).post(f"{API}/jobs/{job.pk}/retry/")
    assert response.status_code == 400 and "may not push" in response.json()["namespace"][0]
