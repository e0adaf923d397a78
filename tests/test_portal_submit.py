"""The submit form and the batch: what reaches job_create, and what the user is told."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import User
from jobs.models import SyncJob
from tests.factories import JobFactory, NamespaceFactory
from tests.portal_fixtures import fresh_limits  # noqa: F401 (autouse)

HOST = "registry.cn-hangzhou.aliyuncs.com"
NEW = reverse("jobs:new")
BATCH = reverse("jobs:batch")


@pytest.fixture
def as_alice(client, alice, team_namespace):
    client.force_login(alice)
    return client


def copy_form(namespace, source, **extra):
    return {"source": source, "kind": "copy", "namespace": namespace.pk, "destination": "", **extra}


@pytest.mark.django_db
def test_anonymous_is_sent_to_sign_in(client):
    response = client.get(NEW)
    assert response.status_code == 302 and response["Location"].startswith(reverse("account_login"))
    assert client.post(NEW, {"source": "nginx"}).status_code == 302
    assert not SyncJob.objects.exists()


@pytest.mark.django_db
def test_the_form_offers_only_namespaces_the_user_may_push_to_with_their_use(as_alice, team_namespace, alice):
    NamespaceFactory(namespace="elsewhere")  # alice is no member
    JobFactory(owner=alice, namespace=team_namespace, destination_repository=f"{HOST}/team/nginx", status="succeeded")
    page = as_alice.get(NEW, HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200
    body = page.content.decode()
    assert 'data-namespace="team"' in body
    assert "elsewhere" not in body
    assert "1 of 300 repositories used" in body


@pytest.mark.django_db
def test_someone_without_a_namespace_is_told_to_ask_an_administrator(client, charlie):
    client.force_login(charlie)
    body = client.get(NEW, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Ask an administrator to add you to one" in body
    assert 'name="source"' not in body


@pytest.mark.django_db
def test_a_copy_is_submitted_and_the_namespace_remembered(as_alice, alice, team_namespace):
    NamespaceFactory(namespace="second", members=[alice])
    response = as_alice.post(NEW, copy_form(team_namespace, "nginx:1.27"))
    job = SyncJob.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("jobs:detail", args=[job.pk])
    assert (job.owner, job.source, job.destination) == (alice, "docker.io/library/nginx:1.27", f"{HOST}/team/nginx:1.27")
    alice.refresh_from_db()
    assert alice.default_namespace == team_namespace
    # The next visit pre-selects it.
    page = as_alice.get(NEW)
    assert page.context["form"]["namespace"].value() == team_namespace.pk


@pytest.mark.django_db
def test_the_destination_can_be_renamed_in_short_form(as_alice, team_namespace):
    as_alice.post(NEW, copy_form(team_namespace, "ghcr.io/owner/app:v1", destination="team/app:stable"))
    assert SyncJob.objects.get().destination == f"{HOST}/team/app:stable"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("source", "destination", "field", "english"),
    [
        ("nginx:bad tag", "", "source", "space, line break or control character at position 10"),
        ("nginx:-x", "", "source", "Tag '-x' is invalid"),
        ("Bitnami/redis", "", "source", "must be lower case"),
        ("nginx@sha256:abc", "", "source", "Digest 'sha256:abc' is invalid"),
        ("nginx:1", "other/nginx:1", "destination", "inside the namespace"),
        ("nginx:1", "team/a/b:1", "destination", "one level deep"),
    ],
)
def test_a_bad_reference_says_which_part_is_wrong_and_submits_nothing(as_alice, team_namespace, source, destination, field, english):
    page = as_alice.post(NEW, copy_form(team_namespace, source, destination=destination), HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200
    assert any(english in message for message in page.context["form"].errors[field])
    assert not SyncJob.objects.exists()


@pytest.mark.django_db
def test_errors_are_in_chinese_for_a_chinese_browser(as_alice, team_namespace):
    page = as_alice.post(NEW, copy_form(team_namespace, "nginx:-x"), HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9")
    (message,) = page.context["form"].errors["source"]
    assert "标签" in message and "'-x'" in message
    assert "invalid" not in message


@pytest.mark.django_db
def test_a_namespace_the_user_may_not_push_to_is_refused(as_alice):
    foreign = NamespaceFactory(namespace="foreign")
    page = as_alice.post(NEW, copy_form(foreign, "nginx:1.27"), HTTP_ACCEPT_LANGUAGE="en")
    assert "Choose one of your namespaces." in page.context["form"].errors["namespace"]
    assert not SyncJob.objects.exists()


@pytest.mark.django_db
def test_an_identical_active_job_is_returned_not_submitted_twice(as_alice, team_namespace):
    first = as_alice.post(NEW, copy_form(team_namespace, "nginx:1.27"))
    second = as_alice.post(NEW, copy_form(team_namespace, "docker.io/library/nginx:1.27"), follow=True,
                           HTTP_ACCEPT_LANGUAGE="en")
    assert SyncJob.objects.count() == 1
    assert first["Location"] == second.redirect_chain[0][0]
    assert "already under way" in second.content.decode()


@pytest.mark.django_db
def test_a_sync_takes_tag_filters(as_alice, team_namespace):
    as_alice.post(NEW, {"source": "bitnami/redis", "kind": "sync", "namespace": team_namespace.pk,
                        "destination": "team/redis", "tag_include": r"^7\.", "tag_exclude": "rc"})
    job = SyncJob.objects.get()
    assert (job.kind, job.destination, job.tag_include, job.tag_exclude) == ("sync", f"{HOST}/team/redis", r"^7\.", "rc")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "field", "english"),
    [
        ({"kind": "copy", "tag_include": "x"}, "tag_include", "Tag filters apply to a sync"),
        ({"kind": "sync", "tag_include": "(unclosed"}, "tag_include", "Not a valid regular expression"),
        ({"kind": "sync", "destination": "team/other"}, "destination", "A sync always goes to"),
        ({"kind": "bogus"}, "kind", "Select a valid choice"),
    ],
)
def test_bad_options_are_reported_on_their_field(as_alice, team_namespace, data, field, english):
    form = {"source": "bitnami/redis:7", "namespace": team_namespace.pk, "destination": "", **data}
    page = as_alice.post(NEW, form, HTTP_ACCEPT_LANGUAGE="en")
    assert any(english in m for m in page.context["form"].errors[field]), page.context["form"].errors
    assert not SyncJob.objects.exists()


@pytest.mark.django_db
def test_a_full_namespace_is_refused_with_its_use(as_alice, alice, team_namespace):
    team_namespace.repository_quota = 1
    team_namespace.save()
    JobFactory(owner=alice, namespace=team_namespace, destination_repository=f"{HOST}/team/nginx", status="succeeded")
    page = as_alice.post(NEW, copy_form(team_namespace, "redis:7"), HTTP_ACCEPT_LANGUAGE="en")
    assert any("is full: 1 of 1 repositories are used" in m for m in page.context["form"].errors["namespace"])
    assert SyncJob.objects.count() == 1
    zh = as_alice.post(NEW, copy_form(team_namespace, "redis:7"), HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert any("已满" in m for m in zh.context["form"].errors["namespace"])
    # Another tag of a repository the namespace already holds costs nothing.
    assert as_alice.post(NEW, copy_form(team_namespace, "nginx:1.28")).status_code == 302


@pytest.mark.django_db
def test_a_name_clash_is_warned_and_a_prefixed_name_offered(as_alice, alice, team_namespace):
    JobFactory(owner=alice, namespace=team_namespace, source="docker.io/library/redis:7",
               destination=f"{HOST}/team/redis:7", destination_repository=f"{HOST}/team/redis", status="succeeded")
    page = as_alice.post(NEW, copy_form(team_namespace, "bitnami/redis:7"), HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200 and SyncJob.objects.count() == 1
    assert page.context["clash"].suggestion == "team/bitnami-redis:7"
    assert 'value="suggested"' in page.content.decode()

    renamed = as_alice.post(NEW, copy_form(team_namespace, "bitnami/redis:7", clash="suggested"))
    assert renamed.status_code == 302
    assert SyncJob.objects.filter(destination=f"{HOST}/team/bitnami-redis:7").exists()


@pytest.mark.django_db
def test_a_name_clash_can_be_kept_knowingly(as_alice, alice, team_namespace):
    JobFactory(owner=alice, namespace=team_namespace, source="docker.io/library/redis:7",
               destination=f"{HOST}/team/redis:7", destination_repository=f"{HOST}/team/redis", status="running")
    as_alice.post(NEW, copy_form(team_namespace, "bitnami/redis:6", clash="keep"))
    assert SyncJob.objects.filter(source="docker.io/bitnami/redis:6", destination=f"{HOST}/team/redis:6").exists()


@pytest.mark.django_db
def test_another_tag_of_the_same_source_is_no_clash(as_alice, alice, team_namespace):
    JobFactory(owner=alice, namespace=team_namespace, source="docker.io/library/redis:7",
               destination=f"{HOST}/team/redis:7", destination_repository=f"{HOST}/team/redis", status="succeeded")
    assert as_alice.post(NEW, copy_form(team_namespace, "redis:6")).status_code == 302


@pytest.mark.django_db
def test_submissions_are_limited_to_ten_a_minute_per_user(as_alice, team_namespace, client, bob):
    for n in range(10):
        assert as_alice.post(NEW, copy_form(team_namespace, f"nginx:1.{n}")).status_code == 302
    refused = as_alice.post(NEW, copy_form(team_namespace, "nginx:2.0"), HTTP_ACCEPT_LANGUAGE="en")
    assert refused.status_code == 429
    assert refused["Retry-After"] == "60"
    assert "at most 10 jobs per minute" in refused.content.decode()
    assert SyncJob.objects.count() == 10
    # Per user: bob still may.
    client.force_login(bob)
    assert client.post(NEW, copy_form(team_namespace, "nginx:2.0")).status_code == 302


@pytest.mark.django_db
def test_reading_the_form_is_not_limited(as_alice):
    for _ in range(15):
        assert as_alice.get(NEW).status_code == 200


@pytest.mark.django_db
def test_the_form_needs_its_csrf_token(alice, team_namespace):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)
    assert strict.post(NEW, copy_form(team_namespace, "nginx:1.27")).status_code == 403
    assert not SyncJob.objects.exists()


@pytest.mark.django_db
def test_a_link_can_prefill_the_form(as_alice, team_namespace):
    page = as_alice.get(NEW, {"source": "redis:7", "kind": "sync"})
    assert page.context["form"]["source"].value() == "redis:7"
    assert page.context["form"]["kind"].value() == "sync"


# -- batch -----------------------------------------------------------------------------------


def batch_form(namespace, text, kind="copy", **extra):
    return {"images": text, "kind": kind, "namespace": namespace.pk, **extra}


@pytest.mark.django_db
def test_a_batch_makes_one_job_per_line(as_alice, alice, team_namespace):
    text = "# base images\nnginx:1.27\n\n  redis:7  \nghcr.io/owner/app:v1 team/app:v1\n"
    response = as_alice.post(BATCH, batch_form(team_namespace, text), follow=True, HTTP_ACCEPT_LANGUAGE="en")
    assert response.redirect_chain[-1][0] == reverse("home")
    assert "3 jobs submitted." in response.content.decode()
    assert sorted(SyncJob.objects.values_list("destination", flat=True)) == [
        f"{HOST}/team/app:v1", f"{HOST}/team/nginx:1.27", f"{HOST}/team/redis:7",
    ]
    alice.refresh_from_db()
    assert alice.default_namespace == team_namespace


@pytest.mark.django_db
def test_a_batch_with_a_bad_line_submits_nothing_and_names_the_lines(as_alice, team_namespace):
    text = "nginx:1.27\nredis:-x\nalpine:3.20\nnginx:1 team/a/b:1\none two three\n"
    page = as_alice.post(BATCH, batch_form(team_namespace, text), HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200
    errors = page.context["form"].errors["images"]
    assert any(e.startswith("Line 5:") and "3 words" in e for e in errors), errors
    assert not SyncJob.objects.exists()

    page = as_alice.post(BATCH, batch_form(team_namespace, text.replace("one two three\n", "")), HTTP_ACCEPT_LANGUAGE="en")
    errors = page.context["form"].errors["images"]
    assert any(e.startswith("Line 2 (source):") and "Tag '-x' is invalid" in e for e in errors), errors
    assert any(e.startswith("Line 4 (destination):") and "one level deep" in e for e in errors), errors
    assert not SyncJob.objects.exists()


@pytest.mark.django_db
def test_an_empty_batch_is_refused(as_alice, team_namespace):
    page = as_alice.post(BATCH, batch_form(team_namespace, "# nothing\n\n"), HTTP_ACCEPT_LANGUAGE="en")
    assert "No image found" in page.context["form"].errors["images"][0]


@pytest.mark.django_db
def test_a_batch_warns_of_clashes_between_its_own_lines(as_alice, team_namespace):
    text = "redis:7\nbitnami/redis:7\n"
    page = as_alice.post(BATCH, batch_form(team_namespace, text), HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200 and not SyncJob.objects.exists()
    (clash,) = page.context["outcome"].clashes
    assert (clash.key, clash.suggestion) == (2, "team/bitnami-redis:7")

    as_alice.post(BATCH, batch_form(team_namespace, text, clash="suggested"))
    assert sorted(SyncJob.objects.values_list("destination", flat=True)) == [
        f"{HOST}/team/bitnami-redis:7", f"{HOST}/team/redis:7",
    ]


@pytest.mark.django_db
def test_a_batch_past_the_quota_submits_nothing(as_alice, team_namespace):
    team_namespace.repository_quota = 2
    team_namespace.save()
    page = as_alice.post(BATCH, batch_form(team_namespace, "nginx:1\nredis:7\nalpine:3\n"), HTTP_ACCEPT_LANGUAGE="en")
    errors = page.context["form"].errors["images"]
    assert any(e.startswith("Line 3 (namespace):") and "is full: 2 of 2" in e for e in errors), errors
    assert not SyncJob.objects.exists()


@pytest.mark.django_db
def test_a_batch_of_syncs(as_alice, team_namespace):
    as_alice.post(BATCH, batch_form(team_namespace, "bitnami/redis\nlibrary/nginx\n", kind="sync"))
    assert sorted(SyncJob.objects.values_list("kind", "destination")) == [
        ("sync", f"{HOST}/team/nginx"), ("sync", f"{HOST}/team/redis"),
    ]


@pytest.mark.django_db
def test_a_batch_counts_as_one_submission_against_the_limit(as_alice, team_namespace):
    lines = "\n".join(f"nginx:1.{n}" for n in range(30))
    assert as_alice.post(BATCH, batch_form(team_namespace, lines)).status_code == 302
    assert SyncJob.objects.count() == 30


@pytest.mark.django_db
def test_user_model_keeps_no_default_for_a_deleted_namespace(alice, team_namespace):
    User.objects.filter(pk=alice.pk).update(default_namespace=team_namespace)
    team_namespace.delete()
    alice.refresh_from_db()
    assert alice.default_namespace is None


# -- the clash rule itself (jobs.services.destination_clash) ----------------------------------


def hold(owner, namespace, source, repository, status="succeeded"):
    return JobFactory(owner=owner, namespace=namespace, source=source, status=status,
                      destination=f"{HOST}/team/{repository}:1", destination_repository=f"{HOST}/team/{repository}")


@pytest.mark.django_db
def test_a_clash_suggests_the_source_path_as_prefix(alice, team_namespace):
    from jobs.services import destination_clash

    hold(alice, team_namespace, "docker.io/bitnami/redis:7", "redis")
    assert destination_clash(team_namespace, "redis:7.4", "") == "team/library-redis:7.4"
    assert destination_clash(team_namespace, "bitnami/redis:6", "") is None  # same source, more tags
    assert destination_clash(team_namespace, "redis:7.4", "team/cache:7.4") is None  # renamed already


@pytest.mark.django_db
def test_a_taken_suggestion_is_not_offered(alice, team_namespace):
    from jobs.services import destination_clash

    hold(alice, team_namespace, "docker.io/library/redis:7", "redis")
    hold(alice, team_namespace, "ghcr.io/bitnami/redis:7", "bitnami-redis")
    assert destination_clash(team_namespace, "bitnami/redis:7", "") == "team/docker-bitnami-redis:7"


@pytest.mark.django_db
def test_failed_jobs_hold_no_name_and_syncs_count(alice, team_namespace):
    from jobs.services import destination_clash

    hold(alice, team_namespace, "docker.io/library/redis:7", "redis", status="failed")
    assert destination_clash(team_namespace, "bitnami/redis:7", "") is None
    JobFactory(owner=alice, namespace=team_namespace, kind="sync", source="docker.io/library/redis",
               destination=f"{HOST}/team/redis", destination_repository=f"{HOST}/team/redis", status="running")
    assert destination_clash(team_namespace, "bitnami/redis:7", "") == "team/bitnami-redis:7"


@pytest.mark.django_db
def test_input_job_create_would_refuse_is_no_clash(alice, team_namespace):
    from jobs.services import destination_clash

    hold(alice, team_namespace, "docker.io/library/redis:7", "redis")
    assert destination_clash(team_namespace, "bitnami/redis:-x", "") is None
    assert destination_clash(team_namespace, "bitnami/redis:7", "other/redis:7") is None


@pytest.mark.django_db
def test_the_same_source_repository_is_told_apart_from_names_it_prefixes(alice, team_namespace):
    from jobs.services import destination_clash

    hold(alice, team_namespace, "docker.io/bitnami/redis", "redis")  # a sync stores the bare name
    hold(alice, team_namespace, f"docker.io/bitnami/redis@sha256:{'a' * 64}", "redis")
    hold(alice, team_namespace, f"docker.io/bitnami/redis:7@sha256:{'b' * 64}", "redis")
    assert destination_clash(team_namespace, "bitnami/redis:8", "") is None
    assert destination_clash(team_namespace, f"bitnami/redis@sha256:{'c' * 64}", "team/redis:x") is None
    # A name that merely starts like the held one is another image.
    assert destination_clash(team_namespace, "bitnami/redis2:1", "team/redis:1") == "team/bitnami-redis2:1"
    hold(alice, team_namespace, "docker.io/bitnami/redis2:1", "cache")
    assert destination_clash(team_namespace, "bitnami/redis:1", "team/cache:1") == "team/bitnami-redis:1"
