"""Unit tests of jobs/github.py: fake HTTP at the boundary and assert on the exact request."""

from __future__ import annotations

import base64
import json
import pickle
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from nacl.encoding import Base64Encoder
from nacl.public import PrivateKey, SealedBox
from urllib3.exceptions import MaxRetryError, NewConnectionError

from jobs import github
from jobs.github import Config, GitHubClient, GitHubError, TransientError

API = "https://api.github.com"
REPO = f"{API}/repos/acme/images"
DISPATCH = f"{REPO}/actions/workflows/copy.yml/dispatches"
TOKEN = "ghp_0123456789abcdef"


def make_client(**overrides: Any) -> GitHubClient:
    options: dict[str, Any] = {
        "token": TOKEN,
        "repository": "acme/images",
        "user_agent": "imagesync/1.2.3",
        "min_mutation_interval": 0,
    }
    options.update(overrides)
    return GitHubClient(Config(**options))


@pytest.fixture
def client() -> GitHubClient:
    return make_client()


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as mock:
        yield mock


def assert_api_headers(request: requests.PreparedRequest, version: str = "2026-03-10") -> None:
    assert request.headers["Accept"] == "application/vnd.github+json"
    assert request.headers["X-GitHub-Api-Version"] == version
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["User-Agent"] == "imagesync/1.2.3"


def query(request: requests.PreparedRequest) -> dict[str, list[str]]:
    return parse_qs(urlsplit(request.url).query)


def url_without_query(request: requests.PreparedRequest) -> str:
    parts = urlsplit(request.url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def body_of(request: requests.PreparedRequest) -> Any:
    assert request.body is not None
    return json.loads(request.body)


def run_json(run_id: int, title: str, created: str = "2026-11-27T10:00:05Z", **extra: Any) -> dict[str, Any]:
    data = {
        "id": run_id,
        "run_number": run_id % 1000,
        "run_attempt": 1,
        "display_title": title,
        "name": "copy",
        "event": "workflow_dispatch",
        "status": "queued",
        "conclusion": None,
        "html_url": f"https://github.com/acme/images/actions/runs/{run_id}",
        "created_at": created,
        "updated_at": created,
        "run_started_at": created,
        "path": ".github/workflows/copy.yml",
        "workflow_id": 161335,
    }
    data.update(extra)
    return data


INPUTS = {"source": "docker.io/library/nginx:1.27", "target": "team/nginx:1.27", "request_id": "job-17"}


# -- dispatch ---------------------------------------------------------------------------------


def test_dispatch_sends_the_exact_request_and_returns_the_run(client, rsps):
    rsps.post(
        DISPATCH,
        status=200,
        json={
            "workflow_run_id": 987654321,
            "run_url": f"{REPO}/actions/runs/987654321",
            "html_url": "https://github.com/acme/images/actions/runs/987654321",
        },
    )

    result = client.dispatch_workflow("copy.yml", "main", INPUTS)

    assert result == github.DispatchResult(
        987654321,
        f"{REPO}/actions/runs/987654321",
        "https://github.com/acme/images/actions/runs/987654321",
    )
    request = rsps.calls[0].request
    assert request.method == "POST"
    assert request.url == DISPATCH
    assert_api_headers(request)
    assert request.headers["Content-Type"] == "application/json"
    # 2026-03-10 always returns the run, so the 2022 opt-in is not sent.
    assert body_of(request) == {"ref": "main", "inputs": INPUTS}
    assert all(isinstance(value, str) for value in body_of(request)["inputs"].values())


def test_dispatch_asks_for_run_details_on_api_2022_11_28(rsps):
    client = make_client(api_version="2022-11-28")
    rsps.post(
        DISPATCH,
        status=200,
        json={
            "workflow_run_id": 5,
            "run_url": f"{REPO}/actions/runs/5",
            "html_url": "https://github.com/acme/images/actions/runs/5",
        },
    )

    assert client.dispatch_workflow("copy.yml", "main", INPUTS).run_id == 5

    request = rsps.calls[0].request
    assert_api_headers(request, version="2022-11-28")
    assert body_of(request) == {"ref": "main", "inputs": INPUTS, "return_run_details": True}


def test_dispatch_on_2022_11_28_can_skip_run_details(rsps):
    client = make_client(api_version="2022-11-28")
    rsps.post(DISPATCH, status=204)

    client.dispatch_workflow("copy.yml", "main", INPUTS, return_run_details=False)

    assert "return_run_details" not in body_of(rsps.calls[0].request)


def test_dispatch_answered_204_has_no_run_id(client, rsps):
    rsps.post(DISPATCH, status=204)

    result = client.dispatch_workflow("copy.yml", "main", INPUTS)

    assert result == github.DispatchResult(None, None, None)


def test_dispatch_answered_200_without_details_falls_back_to_no_run_id(client, rsps):
    rsps.post(DISPATCH, status=200, body="")

    assert client.dispatch_workflow("copy.yml", "main", INPUTS).run_id is None


def test_dispatch_accepts_a_numeric_workflow_id(client, rsps):
    rsps.post(f"{REPO}/actions/workflows/161335/dispatches", status=204)

    client.dispatch_workflow(161335, "main", {})

    assert body_of(rsps.calls[0].request) == {"ref": "main", "inputs": {}}


def test_dispatch_uses_the_enterprise_base_url(rsps):
    client = make_client(api_url="https://ghe.example.com/api/v3/")
    ghes = "https://ghe.example.com/api/v3"
    rsps.post(f"{ghes}/repos/acme/images/actions/workflows/copy.yml/dispatches", status=204)

    client.dispatch_workflow("copy.yml", "main", INPUTS)

    assert_api_headers(rsps.calls[0].request)


@pytest.mark.parametrize(
    ("github_message", "hint"),
    [
        ('Unexpected inputs provided: ["foo"]', "does not declare this input"),
        ("Workflow does not have 'workflow_dispatch' trigger", "on: workflow_dispatch"),
        ("No ref found for: main", "does not exist in the repository"),
    ],
)
def test_dispatch_422_keeps_githubs_message_and_explains_it(client, rsps, github_message, hint):
    rsps.post(
        DISPATCH,
        status=422,
        json={"message": github_message, "documentation_url": "https://docs.github.com/rest"},
    )

    with pytest.raises(GitHubError) as caught:
        client.dispatch_workflow("copy.yml", "main", INPUTS)

    error = caught.value
    assert error.status == 422
    assert error.kind == "validation"
    assert error.message.startswith(github_message)
    assert hint in error.message
    assert error.github_message == github_message
    assert error.documentation_url == "https://docs.github.com/rest"
    assert not error.retryable
    assert not error.outcome_unknown
    assert not isinstance(error, TransientError)


def test_dispatch_404_names_the_workflow_and_repository(client, rsps):
    rsps.post(DISPATCH, status=404, json={"message": "Not Found"})

    with pytest.raises(GitHubError) as caught:
        client.dispatch_workflow("copy.yml", "main", INPUTS)

    assert caught.value.message == (
        "workflow copy.yml was not found in acme/images (is it on the default branch?)"
    )
    assert caught.value.status == 404
    assert not caught.value.retryable


def test_401_says_the_token_is_invalid(client, rsps):
    rsps.post(DISPATCH, status=401, json={"message": "Bad credentials"})

    with pytest.raises(GitHubError) as caught:
        client.dispatch_workflow("copy.yml", "main", INPUTS)

    assert caught.value.message == "the GitHub token is invalid or expired"
    assert caught.value.kind == "unauthorized"
    assert not caught.value.retryable
    assert "Bad credentials" in str(caught.value)


def test_403_without_rate_limit_is_a_permission_problem(client, rsps):
    rsps.post(
        DISPATCH,
        status=403,
        json={"message": "Resource not accessible by personal access token"},
        headers={
            "x-ratelimit-limit": "5000",
            "x-ratelimit-remaining": "4990",
            "x-ratelimit-reset": "1790000000",
        },
    )

    with pytest.raises(GitHubError) as caught:
        client.dispatch_workflow("copy.yml", "main", INPUTS)

    error = caught.value
    assert error.message == (
        "the GitHub token lacks permission: a classic token needs the repo scope, "
        "a fine-grained token Actions: write"
    )
    assert error.kind == "forbidden"
    assert not error.retryable
    assert error.retry_after is None


def test_403_with_exhausted_primary_limit_waits_until_reset(client, rsps):
    reset = int(time.time()) + 120
    rsps.post(
        DISPATCH,
        status=403,
        json={"message": "API rate limit exceeded for user ID 1."},
        headers={
            "x-ratelimit-limit": "5000",
            "x-ratelimit-remaining": "0",
            "x-ratelimit-used": "5000",
            "x-ratelimit-reset": str(reset),
            "x-ratelimit-resource": "core",
        },
    )

    with pytest.raises(TransientError) as caught:
        client.dispatch_workflow("copy.yml", "main", INPUTS)

    error = caught.value
    assert error.kind == "rate_limited"
    assert error.retryable
    assert 115 <= error.retry_after <= 121
    # A refused request did nothing: no doubt about a created run.
    assert not error.outcome_unknown
    assert client.last_rate_limit == github.RateLimit(5000, 0, 5000, reset, "core")


def test_403_secondary_limit_without_headers_waits_a_minute(client, rsps):
    rsps.post(DISPATCH, status=403, json={"message": "You have exceeded a secondary rate limit."})

    with pytest.raises(GitHubError) as caught:
        client.dispatch_workflow("copy.yml", "main", INPUTS)

    assert caught.value.retryable
    assert caught.value.retry_after == 60


def test_429_honours_retry_after(client, rsps):
    rsps.post(
        DISPATCH,
        status=429,
        json={"message": "You have exceeded a secondary rate limit."},
        headers={
            "retry-after": "30",
            "x-ratelimit-remaining": "0",
            "x-ratelimit-reset": str(int(time.time()) + 900),
        },
    )

    with pytest.raises(GitHubError) as caught:
        client.dispatch_workflow("copy.yml", "main", INPUTS)

    assert caught.value.status == 429
    assert caught.value.retryable
    assert caught.value.retry_after == 30


def test_5xx_on_dispatch_is_retryable_but_may_have_created_a_run(client, rsps):
    rsps.post(DISPATCH, status=502, body="<html>Bad Gateway</html>")

    with pytest.raises(TransientError) as caught:
        client.dispatch_workflow("copy.yml", "main", INPUTS)

    error = caught.value
    assert error.status == 502
    assert error.kind == "server"
    assert error.retryable
    assert error.outcome_unknown


def test_5xx_on_a_read_is_retryable_and_harmless(client, rsps):
    rsps.get(f"{REPO}/actions/runs/7", status=503, json={"message": "Service Unavailable"})

    with pytest.raises(GitHubError) as caught:
        client.get_run(7)

    assert caught.value.retryable
    assert not caught.value.outcome_unknown


def test_read_timeout_on_dispatch_leaves_the_outcome_unknown(client, rsps):
    rsps.post(DISPATCH, body=requests.exceptions.ReadTimeout())

    with pytest.raises(TransientError) as caught:
        client.dispatch_workflow("copy.yml", "main", INPUTS)

    error = caught.value
    assert error.kind == "transport"
    assert error.status is None
    assert error.retryable
    assert error.outcome_unknown


def test_connect_timeout_on_dispatch_sent_nothing(client, rsps):
    rsps.post(DISPATCH, body=requests.exceptions.ConnectTimeout())

    with pytest.raises(GitHubError) as caught:
        client.dispatch_workflow("copy.yml", "main", INPUTS)

    assert caught.value.retryable
    assert not caught.value.outcome_unknown


def test_refused_connection_sent_nothing(client, rsps):
    refused = MaxRetryError(None, DISPATCH, NewConnectionError(None, "Connection refused"))
    rsps.post(DISPATCH, body=requests.exceptions.ConnectionError(refused))

    with pytest.raises(GitHubError) as caught:
        client.dispatch_workflow("copy.yml", "main", INPUTS)

    assert caught.value.retryable
    assert not caught.value.outcome_unknown


def test_reset_connection_on_dispatch_leaves_the_outcome_unknown(client, rsps):
    rsps.post(DISPATCH, body=requests.exceptions.ConnectionError("Connection aborted."))

    with pytest.raises(GitHubError) as caught:
        client.dispatch_workflow("copy.yml", "main", INPUTS)

    assert caught.value.outcome_unknown


def test_it_refuses_more_than_25_inputs_before_sending(client, rsps):
    inputs = {f"input_{n}": "x" for n in range(26)}

    with pytest.raises(GitHubError) as caught:
        client.dispatch_workflow("copy.yml", "main", inputs)

    assert caught.value.kind == "invalid_request"
    assert not caught.value.retryable
    assert len(rsps.calls) == 0


def test_it_refuses_a_non_string_input_before_sending(client, rsps):
    with pytest.raises(GitHubError) as caught:
        client.dispatch_workflow("copy.yml", "main", {"all_tags": True})  # type: ignore[dict-item]

    assert "must be a string" in caught.value.message
    assert len(rsps.calls) == 0


def test_it_refuses_a_payload_over_65535_characters_before_sending(client, rsps):
    with pytest.raises(GitHubError) as caught:
        client.dispatch_workflow("copy.yml", "main", {"tags": "x" * 65_535})

    assert "65535" in caught.value.message
    assert not caught.value.retryable
    assert len(rsps.calls) == 0


# -- runs -------------------------------------------------------------------------------------


def test_get_run_parses_the_run(client, rsps):
    rsps.get(
        f"{REPO}/actions/runs/42",
        json=run_json(42, "copy nginx [job-17]", status="completed", conclusion="success"),
        headers={"ETag": 'W/"abc"'},
    )

    detail = client.get_run(42)

    assert detail.etag == 'W/"abc"'
    assert not detail.not_modified
    run = detail.run
    assert run is not None
    assert run.id == 42
    assert run.display_title == "copy nginx [job-17]"
    assert run.status == "completed"
    assert run.conclusion == "success"
    assert run.created_at == datetime(2026, 11, 27, 10, 0, 5, tzinfo=UTC)
    assert run.workflow_id == 161335
    request = rsps.calls[0].request
    assert request.method == "GET"
    assert_api_headers(request)
    assert "If-None-Match" not in request.headers


def test_get_run_with_etag_answered_304_is_not_modified(client, rsps):
    rsps.get(f"{REPO}/actions/runs/42", status=304, headers={"ETag": 'W/"abc"'})

    detail = client.get_run(42, etag='W/"abc"')

    assert detail == github.RunDetail(None, 'W/"abc"', not_modified=True)
    assert rsps.calls[0].request.headers["If-None-Match"] == 'W/"abc"'


def test_list_workflow_runs_sends_filters_and_parses_the_page(client, rsps):
    rsps.get(
        f"{REPO}/actions/workflows/copy.yml/runs",
        json={"total_count": 2, "workflow_runs": [run_json(2, "b"), run_json(1, "a")]},
        headers={"ETag": '"page1"'},
    )

    result = client.list_workflow_runs(
        "copy.yml", event="workflow_dispatch", status="in_progress", per_page=50, page=2
    )

    assert [run.id for run in result.runs] == [2, 1]
    assert result.total_count == 2
    assert result.etag == '"page1"'
    assert not result.not_modified
    assert not result.has_next
    request = rsps.calls[0].request
    assert_api_headers(request)
    assert query(request) == {
        "event": ["workflow_dispatch"],
        "status": ["in_progress"],
        "per_page": ["50"],
        "page": ["2"],
    }


def test_list_runs_with_etag_answered_304_has_no_runs(client, rsps):
    rsps.get(f"{REPO}/actions/runs", status=304, headers={"ETag": '"same"'})

    result = client.list_runs(status="in_progress", etag='"same"')

    assert result.not_modified
    assert result.runs == []
    assert result.etag == '"same"'
    request = rsps.calls[0].request
    assert request.headers["If-None-Match"] == '"same"'
    assert url_without_query(request) == f"{REPO}/actions/runs"
    assert query(request) == {"status": ["in_progress"], "per_page": ["100"], "page": ["1"]}


def test_list_jobs_follows_the_link_header(client, rsps):
    step = {
        "name": "Copy",
        "number": 2,
        "status": "completed",
        "conclusion": "failure",
        "started_at": "2026-11-27T10:01:00Z",
        "completed_at": "2026-11-27T10:02:00Z",
    }
    job = {
        "id": 11,
        "name": "copy",
        "status": "completed",
        "conclusion": "failure",
        "started_at": "2026-11-27T10:00:30Z",
        "completed_at": "2026-11-27T10:02:00Z",
        "html_url": "https://github.com/acme/images/actions/runs/42/job/11",
        "steps": [step],
    }
    # GitHub's next links point at /repositories/{id}/, not at the path that was asked.
    next_url = f"{API}/repositories/123/actions/runs/42/jobs?per_page=100&page=2"
    rsps.get(
        f"{REPO}/actions/runs/42/jobs",
        json={"total_count": 2, "jobs": [job]},
        headers={"Link": f'<{next_url}>; rel="next", <{next_url}>; rel="last"'},
    )
    rsps.get(next_url, json={"total_count": 2, "jobs": [dict(job, id=12, steps=[])]})

    jobs = client.list_run_jobs(42)

    assert [j.id for j in jobs] == [11, 12]
    assert jobs[0].steps == (
        github.Step(
            "Copy",
            2,
            "completed",
            "failure",
            datetime(2026, 11, 27, 10, 1, tzinfo=UTC),
            datetime(2026, 11, 27, 10, 2, tzinfo=UTC),
        ),
    )
    assert rsps.calls[1].request.url == next_url
    assert_api_headers(rsps.calls[1].request)


def test_pagination_refuses_a_next_link_off_the_api_host(client, rsps):
    rsps.get(
        f"{REPO}/actions/runs/42/jobs",
        json={"total_count": 2, "jobs": []},
        headers={"Link": '<https://evil.example/steal?page=2>; rel="next"'},
    )

    with pytest.raises(GitHubError):
        client.list_run_jobs(42)

    assert len(rsps.calls) == 1


def test_find_run_by_request_id_picks_the_matching_title_not_the_newest(client, rsps):
    url = f"{REPO}/actions/workflows/copy.yml/runs"
    page2 = f"{API}/repositories/123/actions/workflows/161335/runs?page=2"
    rsps.get(
        url,
        json={
            "total_count": 4,
            "workflow_runs": [
                run_json(104, "copy redis [job-18]", "2026-11-27T10:00:09Z"),
                run_json(103, "copy nginx [job-170]", "2026-11-27T10:00:08Z"),
            ],
        },
        headers={"Link": f'<{page2}>; rel="next"'},
    )
    rsps.get(
        page2,
        json={
            "total_count": 4,
            "workflow_runs": [
                run_json(102, "copy nginx [job-17]", "2026-11-27T10:00:07Z"),
                run_json(101, "copy alpine [job-16]", "2026-11-27T10:00:01Z"),
            ],
        },
    )

    run = client.find_run_by_request_id(
        "copy.yml", "job-17", datetime(2026, 11, 27, 10, 0, 0, tzinfo=UTC)
    )

    assert run is not None
    assert run.id == 102
    # The window is widened by the default five minutes of clock slack.
    assert query(rsps.calls[0].request) == {
        "event": ["workflow_dispatch"],
        "created": [">=2026-11-27T09:55:00Z"],
        "per_page": ["100"],
        "page": ["1"],
    }


def test_find_run_by_request_id_returns_none_without_a_match(client, rsps):
    rsps.get(
        f"{REPO}/actions/workflows/copy.yml/runs",
        json={"total_count": 1, "workflow_runs": [run_json(104, "copy redis [job-18]")]},
    )

    assert client.find_run_by_request_id("copy.yml", "job-17", datetime(2026, 11, 27, tzinfo=UTC)) is None


def test_find_run_by_request_id_prefers_the_oldest_of_duplicates(client, rsps):
    rsps.get(
        f"{REPO}/actions/workflows/copy.yml/runs",
        json={
            "total_count": 2,
            "workflow_runs": [
                run_json(106, "copy [job-17]", "2026-11-27T10:00:09Z"),
                run_json(105, "copy [job-17]", "2026-11-27T10:00:02Z"),
            ],
        },
    )

    run = client.find_run_by_request_id("copy.yml", "job-17", datetime(2026, 11, 27, 10, tzinfo=UTC))

    assert run is not None and run.id == 105


def test_cancel_run_returns_true_when_accepted(client, rsps):
    rsps.post(f"{REPO}/actions/runs/42/cancel", status=202, json={})

    assert client.cancel_run(42) is True

    request = rsps.calls[0].request
    assert request.method == "POST"
    assert_api_headers(request)


def test_cancel_run_returns_false_when_it_can_no_longer_be_cancelled(client, rsps):
    rsps.post(
        f"{REPO}/actions/runs/42/cancel",
        status=409,
        json={"message": "Cannot cancel a workflow run that is completed."},
    )

    assert client.cancel_run(42) is False


@pytest.mark.parametrize(
    ("method", "suffix"), [("rerun", "rerun"), ("rerun_failed_jobs", "rerun-failed-jobs")]
)
def test_reruns_post_to_their_endpoint(client, rsps, method, suffix):
    rsps.post(f"{REPO}/actions/runs/42/{suffix}", status=201, json={})

    getattr(client, method)(42)

    assert rsps.calls[0].request.method == "POST"
    assert_api_headers(rsps.calls[0].request)


# -- logs -------------------------------------------------------------------------------------


def test_run_logs_follow_the_redirect_without_the_token(client, rsps):
    signed = "https://pipelines.actions.githubusercontent.com/logs/42.zip?sig=abc&se=2026"
    rsps.get(f"{REPO}/actions/runs/42/logs", status=302, headers={"Location": signed})
    rsps.get(signed, body=b"PK\x03\x04zip", content_type="application/zip")

    assert client.download_run_logs(42) == b"PK\x03\x04zip"

    assert_api_headers(rsps.calls[0].request)
    second = rsps.calls[1].request
    assert second.url == signed
    assert "Authorization" not in second.headers
    assert second.headers["User-Agent"] == "imagesync/1.2.3"


def test_job_log_text_follows_the_redirect_without_the_token(client, rsps):
    signed = "https://results-receiver.actions.githubusercontent.com/job/11.txt?sig=x"
    rsps.get(f"{REPO}/actions/jobs/11/logs", status=302, headers={"Location": signed})
    rsps.get(signed, body="2026-11-27T10:00:00Z Copying nginx\n")

    assert client.job_log_text(11) == "2026-11-27T10:00:00Z Copying nginx\n"
    assert "Authorization" not in rsps.calls[1].request.headers


def test_an_expired_signed_log_url_is_retryable(client, rsps):
    signed = "https://pipelines.actions.githubusercontent.com/logs/42.zip?sig=old"
    rsps.get(f"{REPO}/actions/runs/42/logs", status=302, headers={"Location": signed})
    rsps.get(signed, status=403, body="AuthenticationFailed")

    with pytest.raises(GitHubError) as caught:
        client.download_run_logs(42)

    assert caught.value.kind == "download"
    assert caught.value.retryable


def test_expired_logs_are_gone(client, rsps):
    rsps.get(f"{REPO}/actions/runs/42/logs", status=410, json={"message": "Gone"})

    with pytest.raises(GitHubError) as caught:
        client.download_run_logs(42)

    assert caught.value.kind == "gone"
    assert not caught.value.retryable


# -- secrets ----------------------------------------------------------------------------------


def test_put_secret_encrypts_for_the_repository_key(client, rsps):
    private = PrivateKey.generate()
    public = private.public_key.encode(Base64Encoder).decode()
    rsps.get(f"{REPO}/actions/secrets/public-key", json={"key_id": "568250167242549743", "key": public})
    rsps.put(f"{REPO}/actions/secrets/ACR_TEAM", status=201)

    assert client.put_secret("ACR_TEAM", "fixed-password-é") == "created"

    request = rsps.calls[1].request
    assert request.method == "PUT"
    assert_api_headers(request)
    body = body_of(request)
    assert set(body) == {"encrypted_value", "key_id"}
    assert body["key_id"] == "568250167242549743"
    plain = SealedBox(private).decrypt(base64.b64decode(body["encrypted_value"]))
    assert plain.decode() == "fixed-password-é"
    assert "fixed-password" not in request.body.decode()


def test_put_secret_reports_an_update(client, rsps):
    public = PrivateKey.generate().public_key.encode(Base64Encoder).decode()
    rsps.get(f"{REPO}/actions/secrets/public-key", json={"key_id": "1", "key": public})
    rsps.put(f"{REPO}/actions/secrets/ACR_TEAM", status=204)

    assert client.put_secret("ACR_TEAM", "pw") == "updated"


def test_put_secret_403_names_the_secrets_permission(client, rsps):
    rsps.get(f"{REPO}/actions/secrets/public-key", status=403, json={"message": "Forbidden"})

    with pytest.raises(GitHubError) as caught:
        client.put_secret("ACR_TEAM", "pw")

    assert "Secrets: read" in caught.value.message


@pytest.mark.parametrize(
    "name", ["1ACR", "GITHUB_TOKEN", "github_x", "ACR-TEAM", "ACR TEAM", "", "ACR\n", "ÄCR"]
)
def test_put_secret_refuses_a_bad_name_before_sending(client, rsps, name):
    with pytest.raises(GitHubError) as caught:
        client.put_secret(name, "pw")

    assert caught.value.kind == "invalid_request"
    assert len(rsps.calls) == 0


# -- rate limits ------------------------------------------------------------------------------


def test_rate_limit_headers_are_kept_from_each_answer(client, rsps):
    rsps.get(
        f"{REPO}/actions/runs/42",
        json=run_json(42, "t"),
        headers={
            "x-ratelimit-limit": "5000",
            "x-ratelimit-remaining": "4321",
            "x-ratelimit-used": "679",
            "x-ratelimit-reset": "1795000000",
            "x-ratelimit-resource": "core",
        },
    )

    client.get_run(42)

    assert client.last_rate_limit == github.RateLimit(5000, 4321, 679, 1795000000, "core")
    assert client.last_rate_limit.reset_at == datetime.fromtimestamp(1795000000, UTC)


def test_get_rate_limit_reads_the_core_resource(client, rsps):
    rsps.get(
        f"{API}/rate_limit",
        json={
            "resources": {"core": {"limit": 5000, "remaining": 4999, "used": 1, "reset": 1795000000}},
            "rate": {"limit": 5000, "remaining": 4999, "used": 1, "reset": 1795000000},
        },
    )

    assert client.get_rate_limit() == github.RateLimit(5000, 4999, 1, 1795000000, "core")
    assert_api_headers(rsps.calls[0].request)


def test_mutating_requests_are_spaced_out(monkeypatch, rsps):
    client = make_client(min_mutation_interval=1.0)
    slept: list[float] = []
    monkeypatch.setattr(github.time, "sleep", slept.append)
    rsps.post(f"{REPO}/actions/runs/1/cancel", status=202, json={})
    rsps.post(f"{REPO}/actions/runs/2/cancel", status=202, json={})

    client.cancel_run(1)
    client.cancel_run(2)

    assert len(slept) == 1
    assert 0.5 < slept[0] <= 1.0


# -- errors and configuration -----------------------------------------------------------------


def test_errors_survive_pickling_with_their_attributes():
    error = TransientError("boom", kind="server", status=502, retryable=True, outcome_unknown=True)

    copy = pickle.loads(pickle.dumps(error))

    assert isinstance(copy, TransientError)
    assert (copy.status, copy.retryable, copy.outcome_unknown, copy.kind) == (502, True, True, "server")


def test_config_hides_the_token_and_checks_the_repository():
    assert TOKEN not in repr(Config(token=TOKEN, repository="acme/images"))
    with pytest.raises(ValueError):
        Config(token=TOKEN, repository="acme")
    with pytest.raises(ValueError):
        Config(token=TOKEN, repository="acme/images", api_version="2021-01-01")


# -- webhooks ---------------------------------------------------------------------------------

VECTOR_SECRET = "It's a Secret to Everybody"
VECTOR_BODY = b"Hello, World!"
VECTOR_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_webhook_signature_matches_githubs_test_vector():
    assert github.sign_webhook_body(VECTOR_SECRET, VECTOR_BODY) == VECTOR_SIGNATURE
    assert github.verify_webhook_signature(VECTOR_SECRET, VECTOR_BODY, VECTOR_SIGNATURE)
    assert github.verify_webhook_signature(VECTOR_SECRET.encode(), VECTOR_BODY, VECTOR_SIGNATURE)


@pytest.mark.parametrize(
    ("secret", "body", "header"),
    [
        ("another secret", VECTOR_BODY, VECTOR_SIGNATURE),
        (VECTOR_SECRET, b"Hello, World?", VECTOR_SIGNATURE),
        (VECTOR_SECRET, VECTOR_BODY, None),
        (VECTOR_SECRET, VECTOR_BODY, ""),
        (VECTOR_SECRET, VECTOR_BODY, VECTOR_SIGNATURE.removeprefix("sha256=")),
        (VECTOR_SECRET, VECTOR_BODY, "sha1=" + VECTOR_SIGNATURE.removeprefix("sha256=")),
        (VECTOR_SECRET, VECTOR_BODY, VECTOR_SIGNATURE[:-2]),
        (VECTOR_SECRET, VECTOR_BODY, "sha256=" + "z" * 64),
        ("", VECTOR_BODY, github.sign_webhook_body("", VECTOR_BODY)),
    ],
    ids=[
        "wrong-secret",
        "tampered-body",
        "missing",
        "empty",
        "no-prefix",
        "sha1",
        "truncated",
        "not-hex",
        "empty-secret",
    ],
)
def test_webhook_signature_is_refused(secret, body, header):
    assert github.verify_webhook_signature(secret, body, header) is False
