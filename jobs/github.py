"""The one module that talks HTTP to GitHub's REST API.

Pure `requests`, no Django: callers build a `Config` from settings and hold a `GitHubClient`.
Every failure is a `GitHubError` that says whether retrying can help (`retryable`), when
(`retry_after`), and whether a mutating request may have acted although its answer was lost
(`outcome_unknown`). Behaviour follows ../shared/github-api.md.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import math
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Literal
from urllib.parse import quote, urljoin

import requests
from urllib3.exceptions import NewConnectionError

log = logging.getLogger(__name__)

API_VERSIONS = ("2026-03-10", "2022-11-28")
MAX_INPUTS = 25
MAX_DISPATCH_PAYLOAD = 65_535
MAX_SECRET_BYTES = 48 * 1024
# https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api#handle-rate-limit-errors-appropriately
SECONDARY_LIMIT_WAIT = 60

_REPOSITORY_RE = re.compile(r"[A-Za-z0-9-]+/[A-Za-z0-9._-]+", re.ASCII)
_SECRET_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
_MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_REDIRECTS = (301, 302, 303, 307, 308)

ErrorKind = Literal[
    "invalid_request",  # refused client-side, nothing was sent
    "transport",  # timeout or connection failure
    "server",  # 5xx
    "rate_limited",
    "unauthorized",
    "forbidden",
    "not_found",
    "conflict",
    "gone",
    "validation",  # 422
    "download",  # the signed log URL failed
    "unexpected",
]


class GitHubError(Exception):
    """Any failure talking to GitHub. Callers catch this one type and read its attributes.

    `message` is for humans; `github_message` is GitHub's own `message`, unchanged.
    `outcome_unknown` is True when a mutating request may have taken effect although no answer
    arrived: for a dispatch, look for the request id among recent runs before sending it again.
    """

    def __init__(
        self,
        message: str,
        *,
        kind: ErrorKind = "unexpected",
        status: int | None = None,
        retryable: bool = False,
        retry_after: int | None = None,
        outcome_unknown: bool = False,
        github_message: str | None = None,
        documentation_url: str | None = None,
    ) -> None:
        # Only `message` goes into args, so pickling (Celery results) rebuilds the instance
        # with the defaults and then restores the attributes from __dict__.
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after
        self.outcome_unknown = outcome_unknown
        self.github_message = github_message
        self.documentation_url = documentation_url

    def __str__(self) -> str:
        text = f"GitHub {self.status}: {self.message}" if self.status else self.message
        if self.github_message and self.github_message not in self.message:
            text += f" (GitHub said: {self.github_message})"
        return text


class TransientError(GitHubError):
    """A `GitHubError` with `retryable` True, for `autoretry_for=(github.TransientError,)`.

    A dispatch can raise it with `outcome_unknown` True: resolve that doubt before retrying.
    """


def _error(message: str, *, retryable: bool = False, **kwargs: Any) -> GitHubError:
    cls = TransientError if retryable else GitHubError
    return cls(message, retryable=retryable, **kwargs)


def _invalid(message: str) -> GitHubError:
    return GitHubError(message, kind="invalid_request")


@dataclass(frozen=True, kw_only=True)
class Config:
    token: str = field(repr=False)
    repository: str  # "owner/repo"
    api_url: str = "https://api.github.com"  # GHES: https://HOST/api/v3
    api_version: str = "2026-03-10"
    timeout: tuple[float, float] = (5.0, 30.0)  # (connect, read)
    user_agent: str = "imagesync/dev"
    # https://docs.github.com/en/rest/using-the-rest-api/best-practices-for-using-the-rest-api#avoid-concurrent-requests
    # asks for mutating requests one at a time about a second apart (per client here).
    min_mutation_interval: float = 1.0

    def __post_init__(self) -> None:
        if not self.token:
            raise ValueError("a GitHub token is required")
        if not _REPOSITORY_RE.fullmatch(self.repository):
            raise ValueError(f"repository must look like owner/repo, not {self.repository!r}")
        if self.api_version not in API_VERSIONS:
            raise ValueError(f"api_version must be one of {', '.join(API_VERSIONS)}")
        object.__setattr__(self, "api_url", self.api_url.rstrip("/"))


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@dataclass(frozen=True)
class RateLimit:
    limit: int
    remaining: int
    used: int
    reset: int  # epoch seconds
    resource: str

    @property
    def reset_at(self) -> datetime:
        return datetime.fromtimestamp(self.reset, UTC)

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> RateLimit | None:
        try:
            limit = int(headers["x-ratelimit-limit"])
            remaining = int(headers["x-ratelimit-remaining"])
            reset = int(headers["x-ratelimit-reset"])
            used = int(headers.get("x-ratelimit-used", limit - remaining))
        except (KeyError, ValueError):
            return None
        return cls(limit, remaining, used, reset, headers.get("x-ratelimit-resource", "core"))


@dataclass(frozen=True)
class Run:
    id: int
    run_number: int
    run_attempt: int
    display_title: str
    name: str
    event: str
    status: str
    conclusion: str | None
    html_url: str
    created_at: datetime
    updated_at: datetime
    run_started_at: datetime | None
    path: str
    workflow_id: int

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Run:
        """Parse a run from the runs API or from a `workflow_run` webhook payload."""
        return cls(
            id=int(data["id"]),
            run_number=int(data["run_number"]),
            run_attempt=int(data.get("run_attempt") or 1),
            display_title=data.get("display_title") or "",
            name=data.get("name") or "",
            event=data["event"],
            status=data["status"],
            conclusion=data.get("conclusion"),
            html_url=data["html_url"],
            created_at=datetime.fromisoformat(data["created_at"]),
            updated_at=datetime.fromisoformat(data["updated_at"]),
            run_started_at=_parse_time(data.get("run_started_at")),
            path=data.get("path") or "",
            workflow_id=int(data["workflow_id"]),
        )


@dataclass(frozen=True)
class Step:
    name: str
    number: int
    status: str
    conclusion: str | None
    started_at: datetime | None
    completed_at: datetime | None

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Step:
        return cls(
            name=data["name"],
            number=int(data["number"]),
            status=data["status"],
            conclusion=data.get("conclusion"),
            started_at=_parse_time(data.get("started_at")),
            completed_at=_parse_time(data.get("completed_at")),
        )


@dataclass(frozen=True)
class Job:
    id: int
    name: str
    status: str
    conclusion: str | None
    started_at: datetime | None
    completed_at: datetime | None
    html_url: str
    steps: tuple[Step, ...]

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Job:
        return cls(
            id=int(data["id"]),
            name=data["name"],
            status=data["status"],
            conclusion=data.get("conclusion"),
            started_at=_parse_time(data.get("started_at")),
            completed_at=_parse_time(data.get("completed_at")),
            html_url=data.get("html_url") or "",
            steps=tuple(Step.from_api(step) for step in data.get("steps") or ()),
        )


@dataclass(frozen=True)
class DispatchResult:
    run_id: int | None  # None: the server answered 204, find the run by request id
    run_url: str | None
    html_url: str | None


@dataclass(frozen=True)
class RunList:
    runs: list[Run]
    total_count: int | None
    etag: str | None
    not_modified: bool = False
    has_next: bool = False


@dataclass(frozen=True)
class RunDetail:
    run: Run | None  # None only when not_modified
    etag: str | None
    not_modified: bool = False


def created_since(moment: datetime) -> str:
    """The runs API `created` filter for "at or after moment" (naive means UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return ">=" + moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class GitHubClient:
    def __init__(self, config: Config, session: requests.Session | None = None) -> None:
        self.config = config
        self.session = session or requests.Session()
        self.session.headers.update(
            {
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": config.api_version,
                "Authorization": f"Bearer {config.token}",
                "User-Agent": config.user_agent,
            }
        )
        # Signed log URLs carry their own authorisation and live on another host: this session
        # never holds the token. The no-op auth also stops requests adding ~/.netrc credentials.
        self._download_session = requests.Session()
        self._download_session.headers["User-Agent"] = config.user_agent
        self._download_session.auth = lambda request: request
        self.last_rate_limit: RateLimit | None = None
        self._last_mutation = -math.inf

    @property
    def _repo(self) -> str:
        return f"/repos/{self.config.repository}"

    # -- dispatch ---------------------------------------------------------------------------

    # https://docs.github.com/en/rest/actions/workflows#create-a-workflow-dispatch-event
    def dispatch_workflow(
        self,
        workflow: str | int,
        ref: str,
        inputs: Mapping[str, str],
        return_run_details: bool = True,
    ) -> DispatchResult:
        if not ref or not isinstance(ref, str):
            raise _invalid("a dispatch needs a ref (branch or tag)")
        if len(inputs) > MAX_INPUTS:
            raise _invalid(f"a workflow accepts at most {MAX_INPUTS} inputs, not {len(inputs)}")
        for key, value in inputs.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise _invalid(f"input {key!r} must be a string, not {type(value).__name__}")
        payload: dict[str, Any] = {"ref": ref, "inputs": dict(inputs)}
        # 2026-03-10 always answers 200 with the run; 2022-11-28 only when asked.
        if return_run_details and self.config.api_version == "2022-11-28":
            payload["return_run_details"] = True
        # Serialised here so the size checked is the size sent; the limit counts characters.
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
        if len(body) > MAX_DISPATCH_PAYLOAD:
            raise _invalid(f"the dispatch payload is {len(body)} characters, over {MAX_DISPATCH_PAYLOAD}")
        response = self._request(
            "POST",
            f"{self._repo}/actions/workflows/{_segment(workflow)}/dispatches",
            data=body.encode(),
            headers={"Content-Type": "application/json"},
            expected=(200, 204),
            not_found=f"workflow {workflow} was not found in {self.config.repository} "
            "(is it on the default branch?)",
        )
        if response.status_code == 204:
            return DispatchResult(None, None, None)
        try:
            data = response.json()
            return DispatchResult(int(data["workflow_run_id"]), data["run_url"], data["html_url"])
        except (ValueError, KeyError, TypeError):
            # The run exists; only its id is missing, which the 204 fallback also copes with.
            log.warning("dispatch answered 200 without run details: %.200r", response.text)
            return DispatchResult(None, None, None)

    # -- runs -------------------------------------------------------------------------------

    # https://docs.github.com/en/rest/actions/workflow-runs#list-workflow-runs-for-a-workflow
    def list_workflow_runs(
        self,
        workflow: str | int,
        *,
        event: str | None = None,
        status: str | None = None,
        created: str | datetime | None = None,
        per_page: int = 100,
        page: int = 1,
        etag: str | None = None,
    ) -> RunList:
        path = f"{self._repo}/actions/workflows/{_segment(workflow)}/runs"
        return self._run_list(path, _run_params(event, status, created, per_page, page), etag)

    # https://docs.github.com/en/rest/actions/workflow-runs#list-workflow-runs-for-a-repository
    def list_runs(
        self,
        *,
        event: str | None = None,
        status: str | None = None,
        created: str | datetime | None = None,
        per_page: int = 100,
        page: int = 1,
        etag: str | None = None,
    ) -> RunList:
        params = _run_params(event, status, created, per_page, page)
        return self._run_list(f"{self._repo}/actions/runs", params, etag)

    def iter_workflow_runs(
        self,
        workflow: str | int,
        *,
        event: str | None = None,
        status: str | None = None,
        created: str | datetime | None = None,
        max_pages: int = 10,
    ) -> Iterator[Run]:
        """Every matching run, newest first, across pages (filtered lists stop at 1,000 runs)."""
        path = f"{self._repo}/actions/workflows/{_segment(workflow)}/runs"
        params = _run_params(event, status, created, 100, 1)
        for body in self.paginate(path, params, max_pages=max_pages):
            for item in body.get("workflow_runs") or ():
                yield _parse(Run.from_api, item)

    # https://docs.github.com/en/rest/actions/workflow-runs#get-a-workflow-run
    def get_run(self, run_id: int, etag: str | None = None) -> RunDetail:
        response = self._request(
            "GET",
            f"{self._repo}/actions/runs/{int(run_id)}",
            headers={"If-None-Match": etag} if etag else None,
            expected=(200, 304) if etag else (200,),
            not_found=f"run {run_id} was not found in {self.config.repository}",
            permission="Actions: read",
        )
        if response.status_code == 304:
            return RunDetail(None, response.headers.get("ETag") or etag, not_modified=True)
        return RunDetail(_parse(Run.from_api, _json(response)), response.headers.get("ETag"))

    def find_runs_by_request_id(
        self,
        workflow: str | int,
        request_id: str,
        created_after: datetime,
        *,
        slack: timedelta = timedelta(minutes=5),
        max_pages: int = 10,
    ) -> list[Run]:
        """Dispatched runs whose display_title (the workflow's run-name) holds request_id, oldest first."""
        if not request_id:
            raise ValueError("request_id must not be empty")
        # The id must stand alone in the title, so "job-1" never matches "job-12".
        pattern = re.compile(rf"(?<![\w-]){re.escape(request_id)}(?![\w-])")
        # created_after comes from our clock, created_at from GitHub's: widen the window a
        # little so skew cannot hide the run; the request id keeps the match exact.
        since = created_since(created_after - slack)
        runs = self.iter_workflow_runs(
            workflow, event="workflow_dispatch", created=since, max_pages=max_pages
        )
        matches = [run for run in runs if pattern.search(run.display_title)]
        return sorted(matches, key=lambda run: (run.created_at, run.id))

    def find_run_by_request_id(
        self,
        workflow: str | int,
        request_id: str,
        created_after: datetime,
        *,
        slack: timedelta = timedelta(minutes=5),
        max_pages: int = 10,
    ) -> Run | None:
        """The run started for request_id (the oldest if a retried dispatch made two), or None."""
        matches = self.find_runs_by_request_id(
            workflow, request_id, created_after, slack=slack, max_pages=max_pages
        )
        return matches[0] if matches else None

    # https://docs.github.com/en/rest/actions/workflow-runs#cancel-a-workflow-run
    def cancel_run(self, run_id: int) -> bool:
        """True when GitHub accepted the cancellation (202); False on 409, when the run has
        already finished or is finishing: poll it for its real conclusion."""
        response = self._request(
            "POST",
            f"{self._repo}/actions/runs/{int(run_id)}/cancel",
            expected=(202, 409),
            not_found=f"run {run_id} was not found in {self.config.repository}",
        )
        return response.status_code == 202

    # https://docs.github.com/en/rest/actions/workflow-runs#re-run-a-workflow
    def rerun(self, run_id: int) -> None:
        self._request(
            "POST",
            f"{self._repo}/actions/runs/{int(run_id)}/rerun",
            expected=(201,),
            not_found=f"run {run_id} was not found in {self.config.repository}",
        )

    # https://docs.github.com/en/rest/actions/workflow-runs#re-run-failed-jobs-from-a-workflow-run
    def rerun_failed_jobs(self, run_id: int) -> None:
        self._request(
            "POST",
            f"{self._repo}/actions/runs/{int(run_id)}/rerun-failed-jobs",
            expected=(201,),
            not_found=f"run {run_id} was not found in {self.config.repository}",
        )

    # https://docs.github.com/en/rest/actions/workflow-jobs#list-jobs-for-a-workflow-run
    def list_run_jobs(self, run_id: int) -> list[Job]:
        path = f"{self._repo}/actions/runs/{int(run_id)}/jobs"
        jobs: list[Job] = []
        for body in self.paginate(path, {"per_page": 100}):
            jobs.extend(_parse(Job.from_api, item) for item in body.get("jobs") or ())
        return jobs

    # https://docs.github.com/en/rest/actions/workflow-runs#download-workflow-run-logs
    def download_run_logs(self, run_id: int) -> bytes:
        """The run's logs as zip bytes (the layout inside is undocumented)."""
        path = f"{self._repo}/actions/runs/{int(run_id)}/logs"
        return self._download(path, f"the logs of run {run_id}")

    # https://docs.github.com/en/rest/actions/workflow-jobs#download-job-logs-for-a-workflow-run
    def job_log_text(self, job_id: int) -> str:
        path = f"{self._repo}/actions/jobs/{int(job_id)}/logs"
        return self._download(path, f"the log of job {job_id}").decode("utf-8", "replace")

    # -- secrets ----------------------------------------------------------------------------

    # https://docs.github.com/en/rest/actions/secrets#get-a-repository-public-key
    def get_secrets_public_key(self) -> tuple[str, str]:
        """(key_id, key): the key is base64 Curve25519."""
        response = self._request(
            "GET", f"{self._repo}/actions/secrets/public-key", permission="Secrets: read"
        )
        data = _json(response)
        try:
            return str(data["key_id"]), str(data["key"])
        except (KeyError, TypeError) as exc:
            raise GitHubError("GitHub's public key answer lacks key_id or key") from exc

    # https://docs.github.com/en/rest/actions/secrets#create-or-update-a-repository-secret
    def put_secret(self, name: str, value: str) -> Literal["created", "updated"]:
        check_secret_name(name)
        if not isinstance(value, str):
            raise _invalid("a secret value must be a string")
        if len(value.encode()) > MAX_SECRET_BYTES:
            raise _invalid(f"a secret value holds at most {MAX_SECRET_BYTES} bytes")
        key_id, key = self.get_secrets_public_key()
        body = json.dumps({"encrypted_value": encrypt_secret(key, value), "key_id": key_id})
        response = self._request(
            "PUT",
            f"{self._repo}/actions/secrets/{name}",
            data=body.encode(),
            headers={"Content-Type": "application/json"},
            expected=(201, 204),
            permission="Secrets: write",
        )
        return "created" if response.status_code == 201 else "updated"

    # -- rate limit and pagination ----------------------------------------------------------

    # https://docs.github.com/en/rest/rate-limit/rate-limit#get-rate-limit-status-for-the-authenticated-user
    def get_rate_limit(self) -> RateLimit:
        """The core limit; this call does not count against it."""
        data = _json(self._request("GET", "/rate_limit", permission="none"))
        try:
            core = data["resources"]["core"]
            return RateLimit(
                int(core["limit"]),
                int(core["remaining"]),
                int(core.get("used", int(core["limit"]) - int(core["remaining"]))),
                int(core["reset"]),
                "core",
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise GitHubError("GitHub's rate limit answer has no core resource") from exc

    # https://docs.github.com/en/rest/using-the-rest-api/using-pagination-in-the-rest-api
    def paginate(
        self, path: str, params: Mapping[str, Any] | None = None, *, max_pages: int = 10
    ) -> Iterator[Any]:
        """The JSON body of each page, following Link rel="next" up to max_pages pages."""
        url: str | None = path
        for _ in range(max_pages):
            if url is None:
                return
            response = self._request("GET", url, params=params, permission="Actions: read")
            yield _json(response)
            url = response.links.get("next", {}).get("url")
            # The next link embeds the query (and often a /repositories/{id}/ path).
            params = None
            if url and not url.startswith(self.config.api_url + "/"):
                raise GitHubError(f"refusing to follow a pagination link off the API host: {url}")

    # -- plumbing ---------------------------------------------------------------------------

    def _run_list(self, path: str, params: dict[str, Any], etag: str | None) -> RunList:
        response = self._request(
            "GET",
            path,
            params=params,
            headers={"If-None-Match": etag} if etag else None,
            expected=(200, 304) if etag else (200,),
            permission="Actions: read",
        )
        new_etag = response.headers.get("ETag")
        if response.status_code == 304:
            return RunList([], None, new_etag or etag, not_modified=True)
        data = _json(response)
        runs = [_parse(Run.from_api, item) for item in data.get("workflow_runs") or ()]
        return RunList(
            runs, data.get("total_count"), new_etag, has_next="next" in response.links
        )

    def _download(self, path: str, what: str) -> bytes:
        response = self._request(
            "GET",
            path,
            expected=(200, *_REDIRECTS),
            allow_redirects=False,
            not_found=f"{what} could not be found in {self.config.repository}",
            permission="Actions: read",
        )
        for _ in range(5):
            if response.status_code not in _REDIRECTS:
                break
            location = response.headers.get("Location")
            if not location:
                raise GitHubError(f"GitHub redirected {what} without a Location", status=response.status_code)
            # Followed by hand with the token-free session: the signed URL is the credential.
            response = self._send(
                self._download_session, "GET", urljoin(response.url, location), allow_redirects=False
            )
        if response.status_code == 200:
            return response.content
        # An expired signature (403) or a storage hiccup is fixed by asking GitHub for a new URL.
        retryable = response.status_code == 403 or response.status_code >= 500
        raise _error(
            f"downloading {what} failed with HTTP {response.status_code}",
            kind="download",
            status=response.status_code,
            retryable=retryable,
        )

    def _request(
        self,
        method: str,
        path_or_url: str,
        *,
        params: Mapping[str, Any] | None = None,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        expected: tuple[int, ...] = (200,),
        allow_redirects: bool = True,
        not_found: str | None = None,
        permission: str = "Actions: write",
    ) -> requests.Response:
        url = path_or_url if "://" in path_or_url else self.config.api_url + path_or_url
        response = self._send(
            self.session,
            method,
            url,
            params=params,
            data=data,
            headers=headers,
            allow_redirects=allow_redirects,
        )
        rate_limit = RateLimit.from_headers(response.headers)
        if rate_limit is not None:
            self.last_rate_limit = rate_limit
        if response.status_code in expected:
            return response
        raise _error_from_response(
            response, method=method, not_found=not_found, permission=permission
        )

    def _send(
        self, session: requests.Session, method: str, url: str, **kwargs: Any
    ) -> requests.Response:
        mutating = method in _MUTATING
        if mutating:
            wait = self._last_mutation + self.config.min_mutation_interval - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        try:
            return session.request(method, url, timeout=self.config.timeout, **kwargs)
        except (requests.ConnectionError, requests.Timeout) as exc:
            unknown = mutating and not _never_sent(exc)
            raise _error(
                f"could not reach GitHub ({type(exc).__name__})"
                + ("; the request may have been carried out" if unknown else ""),
                kind="transport",
                retryable=True,
                outcome_unknown=unknown,
            ) from exc
        except requests.RequestException as exc:
            raise GitHubError(f"request to GitHub failed: {exc}") from exc
        finally:
            if mutating:
                self._last_mutation = time.monotonic()


# -- helpers ----------------------------------------------------------------------------------


def _segment(value: str | int) -> str:
    return quote(str(value), safe="")


def _run_params(
    event: str | None,
    status: str | None,
    created: str | datetime | None,
    per_page: int,
    page: int,
) -> dict[str, Any]:
    if not 1 <= per_page <= 100:
        raise ValueError("per_page must be between 1 and 100")
    if isinstance(created, datetime):
        created = created_since(created)
    params: dict[str, Any] = {"event": event, "status": status, "created": created}
    params = {key: value for key, value in params.items() if value is not None}
    params.update(per_page=per_page, page=page)
    return params


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise GitHubError(
            f"GitHub answered {response.status_code} with a body that is not JSON",
            status=response.status_code,
        ) from exc


def _parse[T](parser: Callable[[Any], T], data: Any) -> T:
    try:
        return parser(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise GitHubError(f"could not parse GitHub's answer: {exc!r}") from exc


def _never_sent(exc: Exception) -> bool:
    """True when the failure happened before a byte of the request left (safe to resend)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError)


def _retry_after(headers: Mapping[str, str], now: float) -> int:
    # https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api#handle-rate-limit-errors-appropriately
    header = headers.get("retry-after")
    if header:
        try:
            return max(0, int(header))
        except ValueError:
            try:
                return max(0, math.ceil(parsedate_to_datetime(header).timestamp() - now))
            except (TypeError, ValueError):
                pass
    if headers.get("x-ratelimit-remaining") == "0" and headers.get("x-ratelimit-reset"):
        try:
            return max(1, math.ceil(int(headers["x-ratelimit-reset"]) - now))
        except ValueError:
            pass
    return SECONDARY_LIMIT_WAIT


def _is_rate_limited(response: requests.Response, github_message: str | None) -> bool:
    if response.status_code == 429:
        return True
    headers = response.headers
    if headers.get("x-ratelimit-remaining") == "0" or "retry-after" in headers:
        return True
    text = (github_message or "").lower()
    return "rate limit" in text or "abuse" in text


_VALIDATION_HINTS = (
    (
        "unexpected inputs",
        "the workflow file on that ref does not declare this input; "
        "is the deployed workflow older than the portal?",
    ),
    (
        "workflow_dispatch",
        "the workflow needs an `on: workflow_dispatch` trigger on the default branch",
    ),
    ("no ref found", "the branch or tag given as ref does not exist in the repository"),
    ("required", "the workflow requires an input that was not sent"),
)


def _error_from_response(
    response: requests.Response, *, method: str, not_found: str | None, permission: str
) -> GitHubError:
    status = response.status_code
    github_message: str | None = None
    documentation_url: str | None = None
    try:
        body = response.json()
        if isinstance(body, dict):
            github_message = body.get("message")
            documentation_url = body.get("documentation_url")
    except ValueError:
        pass
    common: dict[str, Any] = {
        "status": status,
        "github_message": github_message,
        "documentation_url": documentation_url,
    }
    if status in (403, 429) and _is_rate_limited(response, github_message):
        wait = _retry_after(response.headers, time.time())
        return _error(
            f"GitHub rate limit exceeded; retry in {wait} s",
            kind="rate_limited",
            retryable=True,
            retry_after=wait,
            **common,
        )
    if status >= 500 or status == 408:
        # A 502 after a dispatch may hide a run that was created all the same.
        header = response.headers.get("retry-after")
        return _error(
            f"GitHub answered {status} {response.reason or ''}".rstrip() + "; a retry may help",
            kind="server",
            retryable=True,
            retry_after=int(header) if header and header.isdigit() else None,
            outcome_unknown=method in _MUTATING,
            **common,
        )
    if status == 401:
        return GitHubError("the GitHub token is invalid or expired", kind="unauthorized", **common)
    if status == 403:
        return GitHubError(
            "the GitHub token lacks permission: a classic token needs the repo scope, "
            f"a fine-grained token {permission}",
            kind="forbidden",
            **common,
        )
    if status == 404:
        message = not_found or f"{response.request.path_url} was not found"
        return GitHubError(message, kind="not_found", **common)
    if status == 409:
        return GitHubError(github_message or "conflict", kind="conflict", **common)
    if status == 410:
        return GitHubError(github_message or "gone", kind="gone", **common)
    if status == 422:
        message = github_message or "GitHub refused the request as invalid"
        lowered = message.lower()
        for needle, hint in _VALIDATION_HINTS:
            if needle in lowered:
                message = f"{message} ({hint})"
                break
        return GitHubError(message, kind="validation", **common)
    return GitHubError(
        f"unexpected answer from GitHub: HTTP {status}" + (f": {github_message}" if github_message else ""),
        kind="unexpected",
        **common,
    )


def check_secret_name(name: str) -> None:
    """Raise a non-retryable GitHubError unless GitHub would accept name for a secret."""
    # https://docs.github.com/en/actions/security-for-github-actions/security-guides/using-secrets-in-github-actions#naming-your-secrets
    if not isinstance(name, str) or not _SECRET_NAME_RE.fullmatch(name):
        raise _invalid(
            f"secret name {name!r} may hold only letters, digits and _, and not start with a digit"
        )
    if name.upper().startswith("GITHUB_"):
        raise _invalid(f"secret name {name!r} must not start with GITHUB_")


def encrypt_secret(public_key: str, value: str) -> str:
    """Base64 of a libsodium sealed box of value for the repository's base64 public key."""
    # Imported here so the rest of the portal never needs libsodium loaded.
    from nacl.encoding import Base64Encoder
    from nacl.public import PublicKey, SealedBox

    sealed = SealedBox(PublicKey(public_key.encode(), Base64Encoder)).encrypt(value.encode())
    return base64.b64encode(sealed).decode()


# -- webhooks ---------------------------------------------------------------------------------


# https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
def sign_webhook_body(secret: str | bytes, body: bytes) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def verify_webhook_signature(secret: str | bytes, body: bytes, header: str | None) -> bool:
    """True only for a well-formed X-Hub-Signature-256 matching body under secret."""
    # An empty secret would let anyone compute a valid signature.
    if not secret or not header:
        return False
    scheme, _, digest = header.strip().partition("=")
    if scheme != "sha256" or not re.fullmatch(r"[0-9a-fA-F]{64}", digest):
        return False
    expected = sign_webhook_body(secret, body)
    return hmac.compare_digest(expected, "sha256=" + digest.lower())
