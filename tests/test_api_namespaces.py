"""/api/v1/namespaces/, /api/v1/me/, the OpenAPI schema and the docs page."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group
from django.contrib.staticfiles import finders

from tests.api_support import API, client_for, fresh_throttles  # noqa: F401
from tests.factories import JobFactory, NamespaceFactory

HOST = "registry.cn-hangzhou.aliyuncs.com"
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_throttles")]


def names(response) -> list[str]:
    assert response.status_code == 200, response.json()
    return [ns["name"] for ns in response.json()]


def test_members_see_the_namespaces_they_may_push_to(alice, bob, charlie, team_namespace):
    group = Group.objects.create(name="ops")
    charlie.groups.add(group)
    ops = NamespaceFactory(namespace="ops")
    ops.member_groups.add(group)
    NamespaceFactory(namespace="closed", members=[alice], is_active=False)
    assert names(client_for(alice).get(f"{API}/namespaces/")) == [f"{HOST}/team"]
    assert names(client_for(bob).get(f"{API}/namespaces/")) == [f"{HOST}/team"]
    assert names(client_for(charlie).get(f"{API}/namespaces/")) == [f"{HOST}/ops"]
    assert client_for(charlie).get(f"{API}/namespaces/{team_namespace.pk}/").status_code == 404
    assert client_for(None).get(f"{API}/namespaces/").status_code == 401


def test_staff_see_every_namespace_and_whether_they_may_push(staff, team_namespace):
    own = NamespaceFactory(namespace="admins", members=[staff])
    body = {ns["namespace"]: ns for ns in client_for(staff).get(f"{API}/namespaces/").json()}
    assert set(body) == {"team", "admins"}
    assert body["admins"]["can_push"] is True and body["team"]["can_push"] is False
    assert client_for(staff).get(f"{API}/namespaces/{team_namespace.pk}/").status_code == 200
    assert own.pk == body["admins"]["id"]


def test_quota_use_counts_what_the_quota_check_counts(alice, team_namespace):
    ns = team_namespace
    for source, destination, status, kind in [
        ("docker.io/library/nginx:1", f"{HOST}/team/nginx:1", "succeeded", "copy"),
        ("docker.io/library/nginx:2", f"{HOST}/team/nginx:2", "succeeded", "copy"),  # same repository
        ("docker.io/bitnami/redis", f"{HOST}/team/redis", "succeeded", "sync"),
        ("docker.io/library/redis:7", f"{HOST}/team/redis:7", "succeeded", "copy"),  # same as the sync
        ("docker.io/library/mysql:8", f"{HOST}/team/mysql:8", "failed", "copy"),  # not written
        ("docker.io/library/pg:16", f"{HOST}/team/pg:16", "running", "copy"),  # about to be: counts
    ]:
        JobFactory(
            owner=alice, namespace=ns, source=source, destination=destination, status=status, kind=kind
        )
    other = NamespaceFactory(registry="localhost:5000", namespace="lab", members=[alice], repository_quota=2)
    JobFactory(owner=alice, namespace=other, destination="localhost:5000/lab/a/b:1", status="succeeded")
    JobFactory(
        owner=alice,
        namespace=other,
        destination="localhost:5000/lab/a/b:2",
        status="succeeded",
        source="docker.io/library/x:2",
    )
    body = {n["namespace"]: n for n in client_for(alice).get(f"{API}/namespaces/").json()}
    assert (
        body["team"]["repositories_used"],
        body["team"]["repository_quota"],
        body["team"]["repositories_left"],
    ) == (3, 300, 297)
    assert (body["lab"]["repositories_used"], body["lab"]["repositories_left"]) == (1, 1)


def test_the_namespace_list_is_one_query_whatever_its_size(staff, alice, django_assert_max_num_queries):
    for ns in NamespaceFactory.create_batch(6, members=[alice, staff]):
        JobFactory(owner=alice, namespace=ns, status="succeeded")
    client = client_for(staff)
    client.get(f"{API}/namespaces/")
    with django_assert_max_num_queries(3):  # the token, namespaces with can_push, their use
        response = client.get(f"{API}/namespaces/")
    assert len(response.json()) == 6 and all(ns["repositories_used"] == 1 for ns in response.json())


def test_me_says_who_the_token_belongs_to(staff):
    body = client_for(staff).get(f"{API}/me/").json()
    assert body["email"] == "admin@example.com" and body["is_staff"] is True


# -- schema and docs ------------------------------------------------------------------------


def test_the_openapi_schema_describes_every_endpoint(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert set(schema["paths"]) == {
        "/api/v1/jobs/",
        "/api/v1/jobs/{id}/",
        "/api/v1/jobs/{id}/cancel/",
        "/api/v1/jobs/{id}/retry/",
        "/api/v1/namespaces/",
        "/api/v1/namespaces/{id}/",
        "/api/v1/me/",
    }
    assert schema["components"]["securitySchemes"]["apiToken"]["scheme"] == "bearer"
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert {"401", "429"} <= set(operation["responses"]), f"{method} {path}"


def test_the_docs_page_loads_its_assets_from_this_site_without_inline_script(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(s.startswith("/") for s in sources), sources  # no CDN
    assert re.search(r"<script>(?!</script>)", html) is None
    for asset in (s for s in sources if s.startswith("/static/")):
        assert finders.find(asset.removeprefix("/static/")), asset
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200 and "SwaggerUIBundle" in script.content.decode()
    policy = response["Content-Security-Policy"]
    assert (
        "script-src 'self'" in policy and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    )
