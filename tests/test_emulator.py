"""The GitHub emulator, driven over real HTTP by the portal's own client (jobs.github) where possible
and by raw requests for the edges. Behaviour it must show is in shared/github-api.md."""

from __future__ import annotations

import http.client
import io
import json
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from emulator import GitHubEmulator, parse_created, pytest_fixtures
from emulator.expressions import Evaluator, StatusChecks, evaluate_condition, interpolate
from emulator.pytest_fixtures import write_workflow
from emulator.runner import parse_env_file
from jobs import github
from jobs.github import Config, GitHubClient, GitHubError

github_emulator = pytest_fixtures.github_emulator

ROOT = Path(__file__).resolve().parent.parent
REPO = "acme/imagesync"
TOKEN = "emulator-token"
RUNS = f"/repos/{REPO}/actions/runs"

HELLO = """
name: hello
run-name: hello ${{ inputs.who }} [${{ inputs.request_id }}]
on:
  workflow_dispatch:
    inputs:
      who: {type: string, required: true}
      request_id: {type: string, default: ""}
      mode: {type: choice, options: [fast, slow], default: fast}
      loud: {type: boolean, default: false}
jobs:
  greet:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - name: Greet
        env:
          WHO: ${{ inputs.who }}
          LOUD: ${{ inputs.loud }}
        run: |
          echo "hello $WHO loud=$LOUD"
"""

NO_DISPATCH = """
name: pushed
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - run: echo never
"""


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def client_for(emu: GitHubEmulator, **overrides: Any) -> GitHubClient:
    options = {
        "user_agent": "imagesync-tests",
        "min_mutation_interval": 0,
        "timeout": (2.0, 5.0),
        **overrides,
    }
    return GitHubClient(Config(**emu.client_config(**options)))


def headers(token: str = TOKEN, version: str = "2026-03-10", **extra: str) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {token}",
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": version,
        "User-Agent": "imagesync-tests",
        **extra,
    }


def dispatch_raw(
    emu: GitHubEmulator, workflow: str, body: Any, version: str = "2026-03-10"
) -> requests.Response:
    return requests.post(
        f"{emu.url}/repos/{REPO}/actions/workflows/{workflow}/dispatches",
        data=json.dumps(body),
        headers=headers(version=version, **{"Content-Type": "application/json"}),
        timeout=5,
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    write_workflow(tmp_path, "hello.yml", HELLO)
    write_workflow(tmp_path, "pushed.yml", NO_DISPATCH)
    return tmp_path


def step_lines(emu: GitHubEmulator, run_id: int) -> str:
    with emu.lock:
        return "\n".join(line for job in emu.run(run_id).jobs for step in job.steps for line in step.lines)


# -- authentication and headers ------------------------------------------------------------------


def test_bad_token_is_401_and_client_says_unauthorized(github_emulator, repo):
    emu = github_emulator(repo_root=repo)
    response = requests.get(f"{emu.url}{RUNS}", headers=headers(token="wrong"), timeout=5)
    assert response.status_code == 401
    assert response.json()["message"] == "Bad credentials"
    assert "documentation_url" in response.json()
    ok = requests.get(f"{emu.url}{RUNS}", headers={**headers(), "Authorization": f"token {TOKEN}"}, timeout=5)
    assert ok.status_code == 200
    with pytest.raises(GitHubError) as caught:
        client_for(emu, token="wrong").list_runs()
    assert caught.value.kind == "unauthorized"


def test_missing_user_agent_is_refused(github_emulator, repo):
    emu = github_emulator(repo_root=repo)
    connection = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=5)
    connection.request("GET", RUNS, headers={"Authorization": f"Bearer {TOKEN}"})
    response = connection.getresponse()
    assert response.status == 403
    assert b"User-Agent" in response.read()
    connection.close()


def test_every_answer_carries_rate_limit_headers_and_counts(github_emulator, repo):
    emu = github_emulator(repo_root=repo, rate_limit=100)
    client = client_for(emu)
    client.list_runs()
    client.list_runs()
    assert client.last_rate_limit is not None
    assert (client.last_rate_limit.limit, client.last_rate_limit.remaining, client.last_rate_limit.used) == (
        100,
        98,
        2,
    )
    assert client.get_rate_limit().remaining == 98  # GET /rate_limit is free
    assert emu.stats[("GET", "runs")] == 2
    assert emu.stats[("GET", "rate_limit")] == 1


# -- dispatch -------------------------------------------------------------------------------------


def test_dispatch_2026_returns_the_run_which_executes_and_logs(github_emulator, repo):
    emu = github_emulator(repo_root=repo)
    client = client_for(emu)
    result = client.dispatch_workflow("hello.yml", "main", {"who": "world", "request_id": "job-1"})
    assert result.run_id is not None
    assert result.run_url == f"{emu.url}{RUNS}/{result.run_id}"
    assert result.html_url == f"https://github.com/{REPO}/actions/runs/{result.run_id}"
    emu.wait_for_run(result.run_id, timeout=20)
    run = client.get_run(result.run_id).run
    assert run is not None
    assert (run.status, run.conclusion) == ("completed", "success")
    assert run.display_title == "hello world [job-1]"
    assert (run.name, run.event, run.path, run.run_number, run.run_attempt) == (
        "hello",
        "workflow_dispatch",
        ".github/workflows/hello.yml",
        1,
        1,
    )
    assert run.workflow_id == emu.find_workflow("hello.yml").id
    assert run.run_started_at is not None and run.updated_at >= run.created_at

    jobs = client.list_run_jobs(run.id)
    assert [job.name for job in jobs] == ["greet"]
    assert [step.name for step in jobs[0].steps] == [
        "Set up job",
        "Run actions/checkout@v4",
        "Greet",
        "Complete job",
    ]
    assert all(step.conclusion == "success" for step in jobs[0].steps)
    assert [step.number for step in jobs[0].steps] == [1, 2, 3, 4]

    archive = zipfile.ZipFile(io.BytesIO(client.download_run_logs(run.id)))
    names = archive.namelist()
    assert "1_greet.txt" in names and "greet/3_Greet.txt" in names
    assert "hello world loud=false" in archive.read("greet/3_Greet.txt").decode()
    assert "hello world loud=false" in archive.read("1_greet.txt").decode()
    assert "hello world loud=false" in client.job_log_text(jobs[0].id)
    second = client.dispatch_workflow("hello.yml", "main", {"who": "again"})
    assert emu.run(second.run_id).run_number == 2


def test_dispatch_2022_answers_204_and_the_run_is_found_by_its_request_id(github_emulator, repo):
    emu = github_emulator(repo_root=repo)
    started = datetime.now(UTC)
    client = client_for(emu, api_version="2022-11-28")
    assert (
        client.dispatch_workflow(
            "hello.yml", "main", {"who": "a", "request_id": "req-42"}, return_run_details=False
        ).run_id
        is None
    )
    client.dispatch_workflow(
        "hello.yml", "main", {"who": "b", "request_id": "req-420"}, return_run_details=False
    )
    found = client.find_run_by_request_id("hello.yml", "req-42", started)
    assert found is not None and found.display_title == "hello a [req-42]"
    # The same API version with return_run_details answers 200 with the run.
    detailed = client.dispatch_workflow("hello.yml", "main", {"who": "c"}, return_run_details=True)
    assert detailed.run_id is not None
    raw = dispatch_raw(emu, "hello.yml", {"ref": "main", "inputs": {"who": "d"}}, version="2022-11-28")
    assert raw.status_code == 204 and raw.content == b""


def test_force_204_for_older_servers(github_emulator, repo):
    emu = github_emulator(repo_root=repo, force_204=True)
    assert client_for(emu).dispatch_workflow("hello.yml", "main", {"who": "x"}).run_id is None
    assert len(emu.runs) == 1


@pytest.mark.parametrize(
    ("workflow", "body", "status", "message"),
    [
        (
            "hello.yml",
            {"ref": "main", "inputs": {"who": "x", "foo": "1"}},
            422,
            'Unexpected inputs provided: ["foo"]',
        ),
        (
            "hello.yml",
            {"ref": "main", "inputs": {"who": "x", "foo": "1", "bar": "2"}},
            422,
            'Unexpected inputs provided: ["foo", "bar"]',
        ),
        ("hello.yml", {"ref": "main", "inputs": {}}, 422, "Required input 'who' not provided"),
        ("hello.yml", {"ref": "nope", "inputs": {"who": "x"}}, 422, "No ref found for: nope"),
        ("hello.yml", {"inputs": {"who": "x"}}, 422, 'Invalid request.\n\n"ref" wasn\'t supplied.'),
        (
            "hello.yml",
            {"ref": "main", "inputs": {"who": "x", "mode": "medium"}},
            422,
            "Provided value 'medium' for input 'mode' not in the list of allowed values",
        ),
        (
            "hello.yml",
            {"ref": "main", "inputs": {f"i{n}": "v" for n in range(26)}},
            422,
            "Invalid request.\n\nNo more than 25 properties are allowed; 26 were supplied.",
        ),
        (
            "pushed.yml",
            {"ref": "main", "inputs": {}},
            422,
            "Workflow does not have 'workflow_dispatch' trigger",
        ),
        ("missing.yml", {"ref": "main", "inputs": {}}, 404, "Not Found"),
    ],
)
def test_dispatch_is_validated_like_github(github_emulator, repo, workflow, body, status, message):
    emu = github_emulator(repo_root=repo)
    response = dispatch_raw(emu, workflow, body)
    assert response.status_code == status
    assert response.json()["message"] == message
    assert emu.runs == []


def test_dispatch_errors_through_the_client(github_emulator, repo):
    emu = github_emulator(repo_root=repo)
    client = client_for(emu)
    with pytest.raises(GitHubError) as caught:
        client.dispatch_workflow("hello.yml", "main", {"who": "x", "foo": "y"})
    assert caught.value.kind == "validation"
    assert caught.value.github_message == 'Unexpected inputs provided: ["foo"]'
    with pytest.raises(GitHubError) as caught:
        client.dispatch_workflow("missing.yml", "main", {})
    assert caught.value.kind == "not_found"


def test_numeric_workflow_id_refs_and_coerced_values(github_emulator, repo):
    emu = github_emulator(repo_root=repo, refs=["main", "refs/tags/v1"])
    workflow_id = emu.find_workflow("hello.yml").id
    response = dispatch_raw(emu, str(workflow_id), {"ref": "v1", "inputs": {"who": 7, "loud": True}})
    assert response.status_code == 200
    run = emu.run(response.json()["workflow_run_id"])
    assert run.inputs["who"] == "7" and run.inputs["loud"] == "true"
    assert (run.ref, run.head_branch) == ("refs/tags/v1", "v1")
    emu.wait_for_run(run.id, timeout=20)
    assert "hello 7 loud=true" in step_lines(emu, run.id)
    bad_boolean = dispatch_raw(emu, "hello.yml", {"ref": "main", "inputs": {"who": "x", "loud": "yes"}})
    assert bad_boolean.status_code == 422


# -- runs lists -----------------------------------------------------------------------------------


def test_runs_list_filters_pagination_and_link_header(github_emulator, repo):
    emu = github_emulator(repo_root=repo, dry="success")
    client = client_for(emu)
    ids = [client.dispatch_workflow("hello.yml", "main", {"who": str(n)}).run_id for n in range(5)]
    for run_id in ids:
        emu.wait_for_run(run_id)
    emu.set_dry("failure")
    failed = client.dispatch_workflow("hello.yml", "main", {"who": "f"}).run_id
    emu.wait_for_run(failed)

    first = requests.get(f"{emu.url}{RUNS}", params={"per_page": 2}, headers=headers(), timeout=5)
    body = first.json()
    assert body["total_count"] == 6
    assert [run["id"] for run in body["workflow_runs"]] == [failed, ids[4]]
    assert first.links["next"]["url"].startswith(emu.url + "/")
    assert "page=2" in first.links["next"]["url"] and "page=3" in first.links["last"]["url"]
    last = requests.get(first.links["last"]["url"], headers=headers(), timeout=5)
    assert [run["id"] for run in last.json()["workflow_runs"]] == [ids[1], ids[0]]
    assert "next" not in last.links and "prev" in last.links

    assert [run.id for run in client.iter_workflow_runs("hello.yml")] == [failed, *reversed(ids)]
    assert [run.id for run in client.list_runs(status="failure").runs] == [failed]
    assert len(client.list_runs(status="completed").runs) == 6
    assert client.list_runs(status="in_progress").runs == []
    assert client.list_runs(event="push").runs == []
    assert (
        len(client.list_workflow_runs("hello.yml", created=datetime.now(UTC) - timedelta(minutes=1)).runs)
        == 6
    )
    assert client.list_workflow_runs("hello.yml", created=datetime.now(UTC) + timedelta(minutes=1)).runs == []
    branch = requests.get(f"{emu.url}{RUNS}", params={"branch": "other"}, headers=headers(), timeout=5)
    assert branch.json() == {"total_count": 0, "workflow_runs": []}
    sha = emu.run(failed).head_sha
    by_sha = requests.get(f"{emu.url}{RUNS}", params={"head_sha": sha}, headers=headers(), timeout=5)
    assert by_sha.json()["total_count"] == 6
    capped = requests.get(f"{emu.url}{RUNS}", params={"per_page": 500}, headers=headers(), timeout=5)
    assert len(capped.json()["workflow_runs"]) == 6 and "Link" not in capped.headers
    missing = requests.get(f"{emu.url}{RUNS}/1", headers=headers(), timeout=5)
    assert missing.status_code == 404


def test_created_filter_syntax():
    moment = datetime(2026, 11, 27, 10, 0, 5, tzinfo=UTC)
    assert parse_created(">=2026-11-27T10:00:05Z")(moment)
    assert not parse_created(">2026-11-27T10:00:05Z")(moment)
    assert parse_created("<=2026-11-27T10:00:05Z")(moment)
    assert not parse_created("<2026-11-27T10:00:05Z")(moment)
    assert parse_created("2026-11-27")(moment)
    assert parse_created("<=2026-11-27")(moment)
    assert not parse_created(">2026-11-27")(moment)
    assert parse_created("2026-11-26..2026-11-27")(moment)
    assert parse_created("2026-11-27T10:00:00Z..*")(moment)
    assert not parse_created("*..2026-11-27T10:00:04Z")(moment)
    assert parse_created(">=2026-11-27T11:00:05+01:00")(moment)


def test_etag_304_is_free(github_emulator, repo):
    emu = github_emulator(repo_root=repo, dry="success")
    client = client_for(emu)
    run_id = client.dispatch_workflow("hello.yml", "main", {"who": "x"}).run_id
    emu.wait_for_run(run_id)
    detail = client.get_run(run_id)
    assert detail.etag
    listing = client.list_runs()
    jobs = requests.get(f"{emu.url}{RUNS}/{run_id}/jobs", headers=headers(), timeout=5)
    used = int(jobs.headers["x-ratelimit-used"])
    assert client.get_run(run_id, etag=detail.etag).not_modified
    assert client.list_runs(etag=listing.etag).not_modified
    again = requests.get(
        f"{emu.url}{RUNS}/{run_id}/jobs",
        headers=headers(**{"If-None-Match": jobs.headers["ETag"]}),
        timeout=5,
    )
    assert again.status_code == 304 and again.content == b""
    assert int(again.headers["x-ratelimit-used"]) == used
    assert client.get_rate_limit().used == used
    assert [record.counted for record in emu.request_log[-3:-1]] == [False, False]
    # A change of content changes the ETag.
    emu.rerun(run_id)
    emu.wait_for_run(run_id, attempt=2)
    assert not client.get_run(run_id, etag=detail.etag).not_modified


# -- cancel, rerun, timeouts ----------------------------------------------------------------------

SLOW = """
name: slow
run-name: slow [${{ inputs.request_id }}]
on:
  workflow_dispatch:
    inputs:
      request_id: {type: string}
jobs:
  wait:
    runs-on: ubuntu-latest
    steps:
      - name: Sleep
        run: |
          echo started
          sleep 60
          echo "$((40 + 2)) never"
      - name: Cleanup
        if: always()
        run: echo cleanup ran
      - name: Only on success
        run: echo should not run
"""


def test_cancel_kills_the_running_step(github_emulator, tmp_path):
    write_workflow(tmp_path, "slow.yml", SLOW)
    emu = github_emulator(repo_root=tmp_path)
    client = client_for(emu)
    run_id = client.dispatch_workflow("slow.yml", "main", {}).run_id
    emu.wait_for(lambda: "started" in step_lines(emu, run_id), timeout=20, message="the sleep step to start")
    assert client.get_run(run_id).run.status == "in_progress"
    began = time.monotonic()
    assert client.cancel_run(run_id) is True
    run = emu.wait_for_run(run_id, timeout=10)
    assert time.monotonic() - began < 5
    assert run.conclusion == "cancelled"
    steps = {step.name: step.conclusion for step in client.list_run_jobs(run_id)[0].steps}
    assert steps["Sleep"] == "cancelled"
    assert steps["Cleanup"] == "success"
    assert steps["Only on success"] == "skipped"
    assert "42 never" not in step_lines(emu, run_id)
    assert client.cancel_run(run_id) is False  # 409 once completed
    response = requests.post(f"{emu.url}{RUNS}/{run_id}/cancel", headers=headers(), timeout=5)
    assert response.status_code == 409


def test_cancel_while_queued(github_emulator, repo):
    emu = github_emulator(repo_root=repo, queue_delay=60)
    client = client_for(emu)
    run_id = client.dispatch_workflow("hello.yml", "main", {"who": "x"}).run_id
    emu.wait_for_run(run_id, status="queued")
    assert client.get_run(run_id).run.status == "queued"
    assert client.cancel_run(run_id)
    assert emu.wait_for_run(run_id, timeout=5).conclusion == "cancelled"


def test_slow_queue_holds_runs_until_released(github_emulator, repo):
    emu = github_emulator(repo_root=repo)
    emu.slow_queue(60)
    run_id = client_for(emu).dispatch_workflow("hello.yml", "main", {"who": "x"}).run_id
    emu.wait_for_run(run_id, status="queued")
    time.sleep(0.2)  # a fixed pause is the point here: the run must still be queued after it
    assert emu.run(run_id).status == "queued"
    emu.slow_queue(0)
    assert emu.wait_for_run(run_id, timeout=20).conclusion == "success"


FAILING = """
name: failing
on: workflow_dispatch
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - id: first
        run: echo "n=$GITHUB_RUN_ATTEMPT" >> "$GITHUB_OUTPUT"
      - name: Fail on the first attempt
        run: test "$GITHUB_RUN_ATTEMPT" != 1
      - name: After failure
        if: failure()
        run: echo "failure handler saw ${{ steps.first.outputs.n }}"
"""


def test_rerun_and_rerun_failed_jobs_increment_the_attempt(github_emulator, tmp_path):
    write_workflow(tmp_path, "failing.yml", FAILING)
    emu = github_emulator(repo_root=tmp_path)
    client = client_for(emu)
    run_id = client.dispatch_workflow("failing.yml", "main", {}).run_id
    run = emu.wait_for_run(run_id, timeout=20)
    assert run.conclusion == "failure"
    assert "failure handler saw 1" in step_lines(emu, run_id)
    first_job_id = run.jobs[0].id
    client.rerun_failed_jobs(run_id)
    run = emu.wait_for_run(run_id, attempt=2, timeout=20)
    assert (run.id, run.run_attempt, run.conclusion) == (run_id, 2, "success")
    assert client.get_run(run_id).run.run_attempt == 2
    assert run.jobs[0].id != first_job_id
    client.rerun(run_id)
    assert emu.wait_for_run(run_id, attempt=3, timeout=20).conclusion == "success"
    response = requests.post(f"{emu.url}{RUNS}/{run_id}/rerun", headers=headers(), timeout=5)
    assert response.status_code == 201 and response.json() == {}
    emu.wait_for_run(run_id, attempt=4, timeout=20)
    attempts = requests.get(
        f"{emu.url}{RUNS}/{run_id}/jobs", params={"filter": "all"}, headers=headers(), timeout=5
    )
    assert attempts.json()["total_count"] == 4


TIMEOUT = """
name: timeout
on: workflow_dispatch
jobs:
  slow:
    runs-on: ubuntu-latest
    timeout-minutes: 0.005
    steps:
      - run: sleep 30
  step_limit:
    runs-on: ubuntu-latest
    steps:
      - timeout-minutes: 0.005
        run: sleep 30
"""


def test_timeout_minutes(github_emulator, tmp_path):
    write_workflow(tmp_path, "timeout.yml", TIMEOUT)
    emu = github_emulator(repo_root=tmp_path, kill_grace=1.0)
    run_id = client_for(emu).dispatch_workflow("timeout.yml", "main", {}).run_id
    run = emu.wait_for_run(run_id, timeout=20)
    assert run.conclusion == "timed_out"
    jobs = {job.key: job for job in run.jobs}
    assert jobs["slow"].conclusion == "timed_out"
    assert jobs["step_limit"].conclusion == "failure"  # a step's own timeout fails the step
    assert "The action has timed out." in step_lines(emu, run_id)


# -- logs -----------------------------------------------------------------------------------------


def test_log_redirect_is_signed_and_refuses_the_token(github_emulator, repo):
    emu = github_emulator(repo_root=repo, dry="success", log_url_ttl=60)
    run_id = client_for(emu).dispatch_workflow("hello.yml", "main", {"who": "x"}).run_id
    emu.wait_for_run(run_id)
    redirect = requests.get(
        f"{emu.url}{RUNS}/{run_id}/logs", headers=headers(), allow_redirects=False, timeout=5
    )
    assert redirect.status_code == 302
    location = redirect.headers["Location"]
    parts = urlsplit(location)
    assert parts.path != urlsplit(redirect.url).path and "sig=" in parts.query and "exp=" in parts.query
    # requests keeps Authorization on a same-host redirect: exactly what the blob host must refuse.
    followed = requests.get(f"{emu.url}{RUNS}/{run_id}/logs", headers=headers(), timeout=5)
    assert followed.status_code in (400, 403)
    assert requests.get(location, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5).status_code in (
        400,
        403,
    )
    assert requests.get(location.replace("sig=", "sig=0"), timeout=5).status_code == 403
    plain = requests.get(location, timeout=5)
    assert plain.status_code == 200 and plain.headers["Content-Type"] == "application/zip"
    expired = emu.sign_blob(parts.path, ttl=-1)
    assert requests.get(emu.base_url + expired, timeout=5).status_code == 403


# -- secrets and masking --------------------------------------------------------------------------

SECRETIVE = """
name: secretive
on:
  workflow_dispatch:
    inputs:
      credential: {type: string, default: ACR_TEAM}
      team: {type: string, default: team}
jobs:
  use:
    runs-on: ubuntu-latest
    steps:
      - name: Use secrets
        env:
          BY_NAME: ${{ secrets[inputs.credential] }}
          BY_FORMAT: ${{ secrets[format('ACR_{0}', inputs.team)] }}
          MISSING: ${{ secrets.NOT_THERE }}
          FALLBACK: ${{ secrets.NOT_THERE || 'fallback' }}
        run: |
          echo "value is $BY_NAME / $BY_FORMAT missing=[$MISSING] $FALLBACK"
          echo "::add-mask::dynamic-value-123"
          echo "printed dynamic-value-123"
          echo "::warning::careful"
"""


def test_secrets_from_the_api_reach_steps_and_are_masked(github_emulator, tmp_path):
    write_workflow(tmp_path, "secretive.yml", SECRETIVE)
    emu = github_emulator(repo_root=tmp_path)
    client = client_for(emu)
    key_id, key = client.get_secrets_public_key()
    assert key_id == emu.public_key_id and len(key) == 44
    assert client.put_secret("acr_team", "hunter2-password") == "created"
    assert client.put_secret("ACR_TEAM", "s3cret-password") == "updated"
    assert emu.secret_values() == {"ACR_TEAM": "s3cret-password"}
    for bad in ("GITHUB_X", "1ABC", "has-dash"):
        response = requests.put(
            f"{emu.url}/repos/{REPO}/actions/secrets/{bad}",
            json={"encrypted_value": github.encrypt_secret(key, "v"), "key_id": key_id},
            headers=headers(),
            timeout=5,
        )
        assert response.status_code == 422
    listed = requests.get(f"{emu.url}/repos/{REPO}/actions/secrets", headers=headers(), timeout=5).json()
    assert [item["name"] for item in listed["secrets"]] == ["ACR_TEAM"]

    run_id = client.dispatch_workflow("secretive.yml", "main", {}).run_id
    run = emu.wait_for_run(run_id, timeout=20)
    assert run.conclusion == "success"
    log_text = client.job_log_text(client.list_run_jobs(run_id)[0].id)
    assert "value is *** / *** missing=[] fallback" in log_text
    assert "printed ***" in log_text
    assert "s3cret-password" not in log_text
    # The script text is logged before it runs, so only its output can be masked by add-mask.
    assert "Z printed dynamic-value-123" not in log_text
    assert "##[warning]careful" in log_text
    assert run.annotations[0]["level"] == "warning"


def test_secret_value_really_reaches_the_process(github_emulator, tmp_path):
    out = tmp_path / "seen.txt"
    write_workflow(
        tmp_path,
        "leak.yml",
        f"""
        name: leak
        on: workflow_dispatch
        jobs:
          j:
            runs-on: ubuntu-latest
            steps:
              - env:
                  VALUE: ${{{{ secrets.ACR_TEAM }}}}
                run: printf '%s' "$VALUE" > {out}
        """,
    )
    emu = github_emulator(repo_root=tmp_path, secrets={"acr_team": "preset-value"})
    run_id = emu.dispatch("leak.yml").id
    assert emu.wait_for_run(run_id, timeout=20).conclusion == "success"
    assert out.read_text() == "preset-value"


# -- runner environment ---------------------------------------------------------------------------

ENVIRONMENT = """
name: environment
on: workflow_dispatch
env:
  LEVEL: workflow
jobs:
  first:
    runs-on: ubuntu-latest
    outputs:
      word: ${{ steps.make.outputs.word }}
    env:
      JOB_LEVEL: job
    steps:
      - id: make
        shell: bash
        run: |
          {
            echo "MULTI<<EOF"
            echo "line one"
            echo "line two"
            echo "EOF"
            echo "SIMPLE=plain"
          } >> "$GITHUB_ENV"
          echo "word=bird" >> "$GITHUB_OUTPUT"
          mkdir -p "$RUNNER_TEMP/bin" && printf '#!/bin/sh\\necho tool-ran\\n' > "$RUNNER_TEMP/bin/mytool"
          chmod +x "$RUNNER_TEMP/bin/mytool" && echo "$RUNNER_TEMP/bin" >> "$GITHUB_PATH"
      - name: Read
        run: |
          echo "multi=[$MULTI] simple=$SIMPLE level=$LEVEL/$JOB_LEVEL extra=$EXTRA_SETTING"
          echo "ci=$CI actions=$GITHUB_ACTIONS repo=$GITHUB_REPOSITORY run=$GITHUB_RUN_ID"
          echo "django=[${DJANGO_SETTINGS_MODULE:-}] summary=$(test -f "$GITHUB_STEP_SUMMARY" && echo yes)"
          mytool
          echo "condition ${{ github.repository == 'ACME/IMAGESYNC' && 'matched' || 'nope' }}"
  second:
    needs: first
    runs-on: ubuntu-latest
    steps:
      - run: echo "got ${{ needs.first.outputs.word }}"
      - shell: python
        run: |
          import os
          print("python sees", os.environ["LEVEL"])
      - run: false
        continue-on-error: true
      - run: echo still going
"""


def test_runner_environment_and_file_commands(github_emulator, tmp_path):
    write_workflow(tmp_path, "environment.yml", ENVIRONMENT)
    emu = github_emulator(repo_root=tmp_path, extra_env={"EXTRA_SETTING": "from-emulator"})
    run = emu.wait_for_run(emu.dispatch("environment.yml").id, timeout=20)
    text = step_lines(emu, run.id)
    assert run.conclusion == "success", text
    assert "multi=[line one\n" in text or "multi=[line one" in text
    assert "simple=plain level=workflow/job extra=from-emulator" in text
    assert f"ci=true actions=true repo={REPO} run={run.id}" in text
    assert "django=[] summary=yes" in text
    assert "tool-ran" in text
    assert "condition matched" in text
    assert "got bird" in text
    assert "python sees workflow" in text
    assert "still going" in text


def test_parse_env_file():
    assert parse_env_file("A=1\nB<<EOF\nx\ny\nEOF\nC=a=b\n") == {"A": "1", "B": "x\ny", "C": "a=b"}
    with pytest.raises(ValueError):
        parse_env_file("B<<EOF\nnever closed\n")


def test_expressions():
    evaluator = Evaluator(
        {
            "inputs": {"credential": "team", "n": 3.0, "flag": False},
            "secrets": {"ACR_TEAM": "pw"},
            "github": {"run_id": "42", "repository": "acme/imagesync", "event": {"inputs": {"x": "1"}}},
        }
    )
    assert evaluator.evaluate("secrets[format('ACR_{0}', inputs.credential)]") == "pw"
    assert evaluator.evaluate("secrets[inputs.missing]") is None
    assert evaluator.evaluate("inputs.missing || 'default'") == "default"
    assert evaluator.evaluate("inputs.flag && 'yes'") is False
    assert evaluator.evaluate("github.event.inputs.x == 1") is True
    assert evaluator.evaluate("'It''s' == 'it''S'") is True
    assert evaluator.evaluate("contains('Hello', 'ell') && startsWith('abc', 'A') && endsWith('abc', 'C')")
    assert evaluator.evaluate("join(fromJSON('[1, 2]'), '-')") == "1-2"
    assert evaluator.evaluate("!inputs.flag") is True
    assert evaluator.evaluate("inputs.n > 2 && inputs.n <= 3") is True
    assert interpolate("run ${{ github.run_id }}: ${{ inputs.n }}", evaluator) == "run 42: 3"
    assert evaluate_condition("always()", Evaluator({}, StatusChecks(success=False, failure=True)))
    assert not evaluate_condition("true", Evaluator({}, StatusChecks(success=False, failure=True)))
    assert evaluate_condition("${{ failure() }}", Evaluator({}, StatusChecks(success=False, failure=True)))
    assert evaluate_condition("cancelled()", Evaluator({}, StatusChecks(success=False, cancelled=True)))


# -- webhooks -------------------------------------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    received: list[tuple[dict[str, str], bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((dict(self.headers), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/github/webhook", received
    server.shutdown()
    server.server_close()


def test_webhooks_are_signed_and_can_be_redelivered(github_emulator, repo, receiver):
    url, received = receiver
    secret = "It's a Secret to Everybody"
    emu = github_emulator(repo_root=repo, webhook_url=url, webhook_secret=secret)
    run_id = (
        client_for(emu).dispatch_workflow("hello.yml", "main", {"who": "x", "request_id": "hook-1"}).run_id
    )
    emu.wait_for_run(run_id, timeout=20)
    deliveries = emu.wait_for_deliveries(3)
    assert [delivery.action for delivery in deliveries] == ["requested", "in_progress", "completed"]
    assert all(delivery.status_code == 204 for delivery in deliveries)
    wait_until(lambda: len(received) == 3, what="three deliveries at the receiver")
    for sent_headers, body in received:
        assert github.verify_webhook_signature(secret, body, sent_headers["X-Hub-Signature-256"])
        assert sent_headers["X-GitHub-Event"] == "workflow_run"
        assert sent_headers["Content-Type"] == "application/json"
        assert sent_headers["User-Agent"].startswith("GitHub-Hookshot/")
        assert sent_headers["X-GitHub-Hook-ID"].isdigit()
    last = json.loads(received[-1][1])
    assert last["action"] == "completed"
    assert last["workflow_run"]["id"] == run_id and last["workflow_run"]["conclusion"] == "success"
    assert last["workflow_run"]["display_title"] == "hello x [hook-1]"
    assert github.Run.from_api(last["workflow_run"]).status == "completed"
    assert last["repository"]["full_name"] == REPO and last["sender"]["login"]
    assert last["workflow"]["path"] == ".github/workflows/hello.yml"

    guid = received[-1][0]["X-GitHub-Delivery"]
    emu.redeliver(guid)
    wait_until(lambda: len(received) == 4, what="the redelivery")
    assert received[3][0]["X-GitHub-Delivery"] == guid and received[3][1] == received[2][1]


def test_lost_webhooks_are_logged_but_not_sent(github_emulator, repo, receiver):
    url, received = receiver
    emu = github_emulator(repo_root=repo, webhook_url=url, webhook_secret="s", dry="success")
    emu.lose_webhooks(2)
    run_id = emu.dispatch("hello.yml", inputs={"who": "x"}).id
    emu.wait_for_run(run_id)
    deliveries = emu.wait_for_deliveries(3)
    assert [delivery.lost for delivery in deliveries] == [True, True, False]
    wait_until(lambda: len(received) == 1, what="the one delivery that was not lost")
    assert json.loads(received[0][1])["action"] == "completed"


# -- fault injection ------------------------------------------------------------------------------


def test_502_after_dispatch_leaves_exactly_one_run(github_emulator, repo):
    emu = github_emulator(repo_root=repo, dry="success")
    emu.fail_next("dispatch", status=502, after=True)
    started = datetime.now(UTC)
    client = client_for(emu)
    with pytest.raises(GitHubError) as caught:
        client.dispatch_workflow("hello.yml", "main", {"who": "x", "request_id": "lost-answer"})
    assert caught.value.status == 502 and caught.value.retryable and caught.value.outcome_unknown
    assert len(emu.runs) == 1
    found = client.find_run_by_request_id("hello.yml", "lost-answer", started)
    assert found is not None and found.id == emu.runs[0].id


def test_dropped_answer_after_dispatch(github_emulator, repo):
    emu = github_emulator(repo_root=repo, dry="success")
    emu.drop_next("dispatch")
    with pytest.raises(GitHubError) as caught:
        client_for(emu).dispatch_workflow("hello.yml", "main", {"who": "x"})
    assert caught.value.kind == "transport" and caught.value.outcome_unknown
    assert len(emu.runs) == 1


def test_slow_answer_makes_the_client_time_out(github_emulator, repo):
    emu = github_emulator(repo_root=repo, dry="success")
    emu.delay_next("dispatch", seconds=1.5)
    with pytest.raises(GitHubError) as caught:
        client_for(emu, timeout=(2.0, 0.5)).dispatch_workflow("hello.yml", "main", {"who": "x"})
    assert caught.value.kind == "transport" and caught.value.outcome_unknown
    assert len(emu.runs) == 1


def test_5xx_before_processing_creates_nothing(github_emulator, repo):
    emu = github_emulator(repo_root=repo)
    emu.fail_next("dispatch", status=503, times=2)
    client = client_for(emu)
    for _ in range(2):
        with pytest.raises(GitHubError) as caught:
            client.dispatch_workflow("hello.yml", "main", {"who": "x"})
        assert caught.value.status == 503
    assert emu.runs == []
    assert client.dispatch_workflow("hello.yml", "main", {"who": "x"}).run_id is not None
    assert emu.stats[("POST", "dispatch")] == 3


def test_secondary_rate_limit_429_with_retry_after(github_emulator, repo):
    emu = github_emulator(repo_root=repo)
    emu.secondary_rate_limit("runs", retry_after=7)
    client = client_for(emu)
    with pytest.raises(GitHubError) as caught:
        client.list_runs()
    assert caught.value.status == 429 and caught.value.kind == "rate_limited"
    assert caught.value.retryable and caught.value.retry_after == 7
    assert client.list_runs().runs == []


def test_primary_rate_limit_exhausted(github_emulator, repo):
    emu = github_emulator(repo_root=repo)
    emu.exhaust_rate_limit(reset_in=120)
    response = requests.get(f"{emu.url}{RUNS}", headers=headers(), timeout=5)
    assert response.status_code == 403
    assert response.headers["x-ratelimit-remaining"] == "0"
    assert "rate limit" in response.json()["message"]
    with pytest.raises(GitHubError) as caught:
        client_for(emu).list_runs()
    assert caught.value.kind == "rate_limited" and 100 <= caught.value.retry_after <= 121
    assert client_for(emu).get_rate_limit().remaining == 0
    emu.reset_rate_limit()
    assert client_for(emu).list_runs().runs == []


def test_control_endpoints(github_emulator, repo):
    emu = github_emulator(repo_root=repo, control=True)
    response = requests.post(
        f"{emu.base_url}/_emulator/faults",
        json=[{"kind": "status", "route": "runs", "status": 503}, {"kind": "dry", "conclusion": "failure"}],
        timeout=5,
    )
    assert response.status_code == 201
    assert requests.get(f"{emu.url}{RUNS}", headers=headers(), timeout=5).status_code == 503
    assert requests.get(f"{emu.url}{RUNS}", headers=headers(), timeout=5).status_code == 200
    run_id = emu.dispatch("hello.yml", inputs={"who": "x"}).id
    assert emu.wait_for_run(run_id).conclusion == "failure"
    stats = requests.get(f"{emu.base_url}/_emulator/stats", timeout=5).json()
    assert {"method": "GET", "route": "runs", "count": 2} in stats["requests"]
    assert stats["runs"][0]["conclusion"] == "failure"
    bad = requests.post(
        f"{emu.base_url}/_emulator/faults", json={"kind": "status", "route": "nope"}, timeout=5
    )
    assert bad.status_code == 422
    assert requests.delete(f"{emu.base_url}/_emulator/faults", timeout=5).status_code == 204

    closed = github_emulator(repo_root=repo)
    assert requests.get(f"{closed.base_url}/_emulator/stats", timeout=5).status_code == 404


def test_dry_runs_can_print_result_lines(github_emulator, repo):
    emu = github_emulator(repo_root=repo)
    emu.set_dry("success", output=lambda run: f"IMAGESYNC-RESULT {json.dumps({'who': run.inputs['who']})}")
    run_id = emu.dispatch("hello.yml", inputs={"who": "x"}).id
    emu.wait_for_run(run_id)
    assert 'IMAGESYNC-RESULT {"who": "x"}' in step_lines(emu, run_id)


def test_ghes_prefix(github_emulator, repo):
    emu = github_emulator(repo_root=repo, api_prefix="/api/v3")
    assert emu.url.endswith("/api/v3")
    client = client_for(emu)
    run_id = client.dispatch_workflow("hello.yml", "main", {"who": "x"}).run_id
    assert client.get_run(run_id).run.id == run_id
    assert requests.get(f"{emu.base_url}{RUNS}", headers=headers(), timeout=5).status_code == 404


def test_close_cancels_what_is_still_running(tmp_path):
    write_workflow(tmp_path, "slow.yml", SLOW)
    emu = GitHubEmulator(
        repo_root=tmp_path, token=TOKEN, queue_delay=0, requested_delay=0, kill_grace=1, shutdown_grace=0
    ).start()
    run_id = emu.dispatch("slow.yml").id
    emu.wait_for(lambda: "started" in step_lines(emu, run_id), timeout=20, message="the step to start")
    began = time.monotonic()
    emu.close()
    assert time.monotonic() - began < 8
    assert emu.run(run_id).conclusion == "cancelled"


def test_command_line(tmp_path):
    write_workflow(tmp_path, "hello.yml", HELLO)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "emulator",
            "--port",
            "0",
            "--repo-root",
            str(tmp_path),
            "--repository",
            REPO,
            "--token",
            TOKEN,
            "--secret",
            "X=y",
            "--control",
            "--queue-delay",
            "0",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("EMULATOR_URL=http://127.0.0.1:")
        url = line.split("=", 1)[1]
        response = requests.post(
            f"{url}/repos/{REPO}/actions/workflows/hello.yml/dispatches",
            json={"ref": "main", "inputs": {"who": "cli"}},
            headers=headers(),
            timeout=5,
        )
        assert response.status_code == 200
    finally:
        process.terminate()
        assert process.wait(timeout=15) == 0


# -- the project's real workflow files ------------------------------------------------------------

REAL_WORKFLOWS = ROOT / ".github" / "workflows"


@pytest.mark.parametrize(
    ("file_name", "inputs", "title"),
    [
        (
            "copy.yml",
            {"source_repo": "nginx:1.27", "destination_repo": "team/nginx:1.27", "request_id": "r-1"},
            "copy nginx:1.27 to team/nginx:1.27 [r-1]",
        ),
        (
            "sync.yml",
            {"source_repo": "bitnami/redis", "destination_scope": "team", "request_id": "r-2"},
            "sync bitnami/redis to team [r-2]",
        ),
    ],
)
def test_real_workflow_files(github_emulator, file_name, inputs, title):
    emu = github_emulator(repo_root=ROOT, dry="success")
    workflow = emu.find_workflow(file_name)
    assert workflow.dispatch_inputs is not None and set(inputs) <= set(workflow.dispatch_inputs)
    refused = dispatch_raw(emu, file_name, {"ref": "main", "inputs": {**inputs, "not_an_input": "x"}})
    assert refused.status_code == 422
    assert refused.json()["message"] == 'Unexpected inputs provided: ["not_an_input"]'
    required = [
        name for name, spec in workflow.dispatch_inputs.items() if spec.required and spec.default is None
    ]
    missing = dispatch_raw(
        emu, file_name, {"ref": "main", "inputs": {k: v for k, v in inputs.items() if k != required[0]}}
    )
    assert missing.status_code == 422
    run_id = client_for(emu).dispatch_workflow(file_name, "main", inputs).run_id
    run = emu.wait_for_run(run_id)
    assert run.display_title == title and run.conclusion == "success"


def test_real_copy_workflow_executes_and_refuses_a_bad_reference(github_emulator):
    # No registry needed: the transfer script validates its inputs before anything leaves the host.
    emu = github_emulator(repo_root=ROOT, secrets={"DESTINATION_CREDENTIAL": "user:very-secret-pw"})
    client = client_for(emu)
    run_id = client.dispatch_workflow(
        "copy.yml",
        "main",
        {"source_repo": "Not A Reference!", "destination_repo": "team/x:1", "request_id": "bad-1"},
    ).run_id
    run = emu.wait_for_run(run_id, timeout=60)
    assert run.conclusion == "failure"
    log_text = client.job_log_text(client.list_run_jobs(run_id)[0].id)
    assert "IMAGESYNC-RESULT " in log_text
    assert "very-secret-pw" not in log_text and "DESTINATION_CREDENTIAL: ***" in log_text


# -- smaller features -----------------------------------------------------------------------------


def test_concurrency_limit_keeps_runs_queued(github_emulator, tmp_path):
    write_workflow(tmp_path, "slow.yml", SLOW)
    emu = github_emulator(repo_root=tmp_path, max_concurrent_runs=1)
    first = emu.dispatch("slow.yml").id
    emu.wait_for(lambda: "started" in step_lines(emu, first), timeout=20, message="the first run to start")
    second = emu.dispatch("slow.yml").id
    emu.wait_for_run(second, status="queued")
    assert emu.run(second).status == "queued"
    emu.cancel(first)
    emu.wait_for(lambda: "started" in step_lines(emu, second), timeout=20, message="the second run to start")
    emu.cancel(second)
    assert emu.wait_for_run(second, timeout=10).conclusion == "cancelled"


def test_workflow_listing_and_lookup(github_emulator, repo):
    emu = github_emulator(repo_root=repo)
    listed = requests.get(f"{emu.url}/repos/{REPO}/actions/workflows", headers=headers(), timeout=5).json()
    assert sorted(item["path"] for item in listed["workflows"]) == [
        ".github/workflows/hello.yml",
        ".github/workflows/pushed.yml",
    ]
    hello_id = emu.find_workflow("hello.yml").id
    one = requests.get(f"{emu.url}/repos/{REPO}/actions/workflows/{hello_id}", headers=headers(), timeout=5)
    assert one.json()["name"] == "hello"
    other_repo = requests.get(f"{emu.url}/repos/acme/other/actions/runs", headers=headers(), timeout=5)
    assert other_repo.status_code == 404


UNSUPPORTED = """
name: unsupported
on: workflow_dispatch
jobs:
  j:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/setup-python@v5
      - run: echo "in $PWD"
"""


def test_unknown_actions_and_a_copied_workspace(github_emulator, tmp_path):
    write_workflow(tmp_path, "unsupported.yml", UNSUPPORTED)
    emu = github_emulator(repo_root=tmp_path)
    assert emu.wait_for_run(emu.dispatch("unsupported.yml").id, timeout=20).conclusion == "failure"
    lenient = github_emulator(repo_root=tmp_path, unknown_actions="skip", copy_workspace=True)
    run = lenient.wait_for_run(lenient.dispatch("unsupported.yml").id, timeout=20)
    assert run.conclusion == "success"
    text = step_lines(lenient, run.id)
    assert "cannot run the action 'actions/setup-python@v5'" in text
    assert f"in {tmp_path}" not in text and "/workspace" in text


BACKGROUND = """
name: background
on: workflow_dispatch
jobs:
  j:
    runs-on: ubuntu-latest
    steps:
      - name: Start a server in the background
        run: |
          (sleep 0.3; echo up > "$RUNNER_TEMP/ready"; exec sleep 300) &
          echo $! > "$GITHUB_WORKSPACE/background.pid"
      - name: Use it in a later step
        run: |
          for _ in $(seq 100); do test -f "$RUNNER_TEMP/ready" && break; sleep 0.05; done
          cat "$RUNNER_TEMP/ready"
"""


def test_background_processes_live_until_the_job_ends(github_emulator, tmp_path):
    write_workflow(tmp_path, "background.yml", BACKGROUND)
    emu = github_emulator(repo_root=tmp_path, kill_grace=1.0)
    began = time.monotonic()
    run = emu.wait_for_run(emu.dispatch("background.yml").id, timeout=20)
    assert time.monotonic() - began < 10
    assert run.conclusion == "success", step_lines(emu, run.id)
    assert "Z up" in step_lines(emu, run.id)
    pid = int((tmp_path / "background.pid").read_text())

    def gone() -> bool:
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
        except (OSError, IndexError):
            return True

    wait_until(gone, what="the background process to be killed at the end of the job")
