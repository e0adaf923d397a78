"""The sync engine end to end: portal → Celery → (emulated) GitHub → skopeo → registries.

Every test goes through a real Celery worker, Redis and PostgreSQL; "succeeded" means the image
really arrived in the destination registry.
"""

from __future__ import annotations

import json
import uuid

import pytest
import requests

from jobs import github
from jobs.models import SyncJob
from jobs.services import job_cancel, job_create
from tests.live_stack import WEBHOOK_SECRET, LiveStack, live_stack, live_stack_factory, wait_for  # noqa: F401
from tests.registries import (  # noqa: F401
    build_image,
    build_index,
    destination_registry,
    get_manifest,
    make_proxy,
    manifest_digest,
    push_image,
    registry_root,
    source_registry,
    unique_repo,
)

pytestmark = pytest.mark.e2e


def submit(stack: LiveStack, source: str, kind: str = "copy", **options) -> SyncJob:
    job, created = job_create(owner=stack.owner, namespace=stack.namespace, kind=kind, source=source, **options)
    assert created
    return job


def test_copy_one_tag_arrives_with_the_same_digest(live_stack):
    repo = unique_repo("app")
    digest = push_image(live_stack.source, repo, "1.0", build_image(repo))
    job = submit(live_stack, f"{live_stack.source.host}/{repo}:1.0")
    live_stack.wait_for_job(job, "succeeded")
    last = repo.rsplit("/", 1)[-1]
    assert job.destination == f"{live_stack.destination.host}/team/{last}:1.0"
    assert manifest_digest(live_stack.destination, f"team/{last}", "1.0") == digest
    assert job.github_run_id and job.github_run_number and job.github_run_url.endswith(str(job.github_run_id))
    steps = list(job.transitions.values_list("to_status", flat=True))
    assert steps[0] == "pending" and steps[-1] == "succeeded" and "dispatching" in steps
    assert job.dispatched_at and job.finished_at
    # Exactly one run for this job.
    assert len([r for r in live_stack.emulator.runs if str(job.request_id) in r.display_title]) == 1


def test_a_multi_platform_index_keeps_every_platform(live_stack):
    repo = unique_repo("multi")
    index = build_index(repo)
    digest = push_image(live_stack.source, repo, "2", index)
    job = submit(live_stack, f"{live_stack.source.host}/{repo}:2")
    live_stack.wait_for_job(job, "succeeded")
    last = repo.rsplit("/", 1)[-1]
    assert manifest_digest(live_stack.destination, f"team/{last}", "2") == digest
    _, copied = get_manifest(live_stack.destination, f"team/{last}", "2")
    platforms = {(m["platform"]["os"], m["platform"]["architecture"]) for m in copied["manifests"]}
    assert platforms == {("linux", "amd64"), ("linux", "arm64")}
    for child in copied["manifests"]:
        assert manifest_digest(live_stack.destination, f"team/{last}", child["digest"]) == child["digest"]


def test_sync_copies_three_tags_then_nothing_and_reads_no_source_manifest(live_stack_factory, make_proxy, source_registry):
    proxy = make_proxy(source_registry)
    stack = live_stack_factory(extra_hosts=(proxy.host,))
    repo = unique_repo("lib")
    for tag in ("1", "2", "3"):
        push_image(source_registry, repo, tag, build_image(f"{repo}-{tag}"))
    first = submit(stack, f"{proxy.host}/{repo}", kind="sync")
    stack.wait_for_job(first, "succeeded")
    stack.wait_for_job(first, "succeeded")
    wait_for(lambda: SyncJob.objects.get(pk=first.pk).report_collected, 30, "the sync report")
    first.refresh_from_db()
    assert sorted(t["tag"] for t in first.result["copied"]) == ["1", "2", "3"]

    proxy.reset()
    second = submit(stack, f"{proxy.host}/{repo}", kind="sync")
    stack.wait_for_job(second, "succeeded")
    wait_for(lambda: SyncJob.objects.get(pk=second.pk).report_collected, 30, "the second sync report")
    second.refresh_from_db()
    assert second.result["copied"] == []
    assert sorted(t["tag"] for t in second.result["skipped"]) == ["1", "2", "3"]
    assert proxy.manifest_requests("GET") == []


def test_a_wrong_destination_password_fails_with_an_authentication_message(live_stack_factory, destination_registry):
    stack = live_stack_factory(destination_credential=f"{destination_registry.username}:wrong-password")
    repo = unique_repo("auth")
    push_image(stack.source, repo, "1", build_image(repo))
    job = submit(stack, f"{stack.source.host}/{repo}:1")
    stack.wait_for_job(job, "failed")
    wait_for(lambda: SyncJob.objects.get(pk=job.pk).report_collected, 30, "the failure report")
    job.refresh_from_db()
    assert job.conclusion == "failure"
    assert "credentials" in job.error_message.lower() or "authentication" in job.error_message.lower(), job.error_message
    assert job.failed_step
    assert job.log_excerpt


def test_an_input_smuggled_straight_to_the_workflow_is_refused_by_the_script(live_stack):
    client = github.GitHubClient(github.Config(**live_stack.emulator.client_config()))
    result = client.dispatch_workflow(
        "copy.yml", "main",
        {"source": live_stack.source.host, "destination": live_stack.destination.host,
         "source_repo": "x:1\nteam/evil:1", "destination_repo": "team/x:1;rm -rf /"},
    )
    run = live_stack.emulator.wait_for_run(result.run_id, timeout=60)
    assert run.conclusion == "failure"
    (gh_job,) = client.list_run_jobs(result.run_id)
    log = client.job_log_text(gh_job.id)
    assert "##[error]" in log and "IMAGESYNC-RESULT" in log
    assert '"copied":[]' in log.replace(" ", "")


def test_cancelling_a_job_cancels_its_run(live_stack_factory):
    stack = live_stack_factory()
    stack.emulator.slow_queue(60)  # the run waits in the queue until it is cancelled
    repo = unique_repo("cancel")
    push_image(stack.source, repo, "1", build_image(repo))
    job = submit(stack, f"{stack.source.host}/{repo}:1")
    stack.wait_for_job(job, "queued")
    wait_for(lambda: SyncJob.objects.get(pk=job.pk).github_run_id, 30, "the run id")
    job.refresh_from_db()
    job_cancel(job=job, actor="owner@example.com")
    stack.wait_for_job(job, "cancelled", timeout=60)
    assert stack.emulator.run(job.github_run_id).conclusion == "cancelled"
    assert job.error_message == "cancelled at your request"


@pytest.mark.parametrize("fault", ["fail_after", "drop_after", "fail_before"])
def test_a_lost_or_failed_dispatch_answer_still_makes_exactly_one_run(live_stack_factory, fault):
    stack = live_stack_factory()
    emu = stack.emulator
    if fault == "fail_after":
        emu.fail_next("dispatch", status=502, after=True)
    elif fault == "drop_after":
        emu.drop_next("dispatch", after=True)
    else:
        emu.fail_next("dispatch", status=503, after=False)
    repo = unique_repo("once")
    digest = push_image(stack.source, repo, "1", build_image(repo))
    job = submit(stack, f"{stack.source.host}/{repo}:1")
    stack.wait_for_job(job, "succeeded", timeout=120)
    runs = [r for r in emu.runs if str(job.request_id) in r.display_title]
    assert len(runs) == 1, [r.id for r in runs]
    assert job.github_run_id == runs[0].id
    assert manifest_digest(stack.destination, f"team/{repo.rsplit('/', 1)[-1]}", "1") == digest


def test_when_webhooks_are_lost_the_poller_still_finishes_the_job(live_stack_factory):
    stack = live_stack_factory(beat=True, poll_interval=1)
    stack.emulator.lose_webhooks(None)
    repo = unique_repo("poll")
    push_image(stack.source, repo, "1", build_image(repo))
    job = submit(stack, f"{stack.source.host}/{repo}:1")
    stack.wait_for_job(job, "succeeded", timeout=120)
    assert set(job.transitions.values_list("actor", flat=True)) >= {"poller"}
    assert "webhook" not in set(job.transitions.values_list("actor", flat=True))


def test_webhooks_alone_finish_the_job(live_stack):
    repo = unique_repo("hook")
    push_image(live_stack.source, repo, "1", build_image(repo))
    job = submit(live_stack, f"{live_stack.source.host}/{repo}:1")
    live_stack.wait_for_job(job, "succeeded")
    assert "webhook" in set(job.transitions.values_list("actor", flat=True))


def test_a_forged_webhook_is_refused_and_changes_nothing(live_stack):
    repo = unique_repo("forged")
    job = submit(live_stack, f"{live_stack.source.host}/{repo}:1")  # no image: it would fail
    live_stack.wait_for_job(job, {"queued", "running", "failed"})
    job.refresh_from_db()
    before = (job.status, job.transitions.count())
    run = live_stack.emulator.run_json(job.github_run_id) if job.github_run_id else {"id": 1}
    forged = dict(run, status="completed", conclusion="success")
    body = json.dumps({"action": "completed", "workflow_run": forged, "repository": {"full_name": "acme/imagesync"}}).encode()
    answer = requests.post(
        f"{live_stack.url}/github/webhook", data=body, timeout=10,
        headers={"Content-Type": "application/json", "X-GitHub-Event": "workflow_run",
                 "X-GitHub-Delivery": str(uuid.uuid4()),
                 "X-Hub-Signature-256": github.sign_webhook_body("not-" + WEBHOOK_SECRET, body)},
    )
    assert answer.status_code == 403
    job.refresh_from_db()
    assert job.status != "succeeded"
    assert job.status in ("queued", "running", "failed") and job.transitions.count() >= before[1]
