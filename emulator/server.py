"""The HTTP side: routing, authentication, rate limit headers, ETags, pagination, faults, and the
endpoints of GitHub's REST API that the portal uses (see shared/github-api.md)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import re
import secrets
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from emulator.faults import Fault
from emulator.records import Site, logs_zip
from emulator.workflows import ApiError

if TYPE_CHECKING:
    from emulator.core import GitHubEmulator

log = logging.getLogger(__name__)

DOCS = "https://docs.github.com/rest"
DEFAULT_API_VERSION = "2022-11-28"
SUPPORTED_API_VERSIONS = ("2022-11-28", "2026-03-10")
MAX_DISPATCH_PAYLOAD = 65_535
NO_USER_AGENT = (
    "Request forbidden by administrative rules. Please make sure your request has a User-Agent header "
    "(https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required). "
    "Check https://developer.github.com for other possible causes.\n"
)
_REPO = "/repos/{owner}/{repo}"


@dataclass
class Request:
    method: str
    path: str  # without the API prefix
    query: dict[str, str]
    headers: Mapping[str, str]
    body: bytes
    root: str  # scheme://host[:port] as the client addressed us

    def json(self) -> Any:
        if not self.body:
            return {}
        try:
            return json.loads(self.body)
        except ValueError:
            raise ApiError(400, "Problems parsing JSON") from None


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    counted: bool = True


DROP = Response(0)  # close the connection without answering


def json_response(status: int, data: Any, headers: Mapping[str, str] | None = None) -> Response:
    body = json.dumps(data, separators=(",", ":")).encode() if data is not None else b""
    return Response(status, body, {"Content-Type": "application/json; charset=utf-8", **(headers or {})})


def error_response(status: int, message: str) -> Response:
    return json_response(status, {"message": message, "documentation_url": DOCS, "status": str(status)})


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    name: str
    handler: str
    patterns: tuple[re.Pattern[str], ...]


def _compile(template: str) -> tuple[re.Pattern[str], ...]:
    def regex(text: str) -> re.Pattern[str]:
        return re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(text)) + "$")

    if template.startswith(_REPO):
        # GitHub's pagination links use /repositories/{id}/...; both forms are served.
        return regex(template), regex("/repositories/{repository_id}" + template[len(_REPO) :])
    return (regex(template),)


def _route(method: str, template: str, name: str) -> Route:
    return Route(method, template, name, f"_h_{name}", _compile(template))


API_ROUTES = [
    _route("GET", "/rate_limit", "rate_limit"),
    _route("GET", _REPO + "/actions/workflows", "workflows"),
    _route("GET", _REPO + "/actions/workflows/{workflow_id}", "workflow"),
    _route("POST", _REPO + "/actions/workflows/{workflow_id}/dispatches", "dispatch"),
    _route("GET", _REPO + "/actions/workflows/{workflow_id}/runs", "workflow_runs"),
    _route("GET", _REPO + "/actions/runs", "runs"),
    _route("GET", _REPO + "/actions/runs/{run_id}", "run"),
    _route("POST", _REPO + "/actions/runs/{run_id}/cancel", "cancel"),
    _route("POST", _REPO + "/actions/runs/{run_id}/force-cancel", "force_cancel"),
    _route("POST", _REPO + "/actions/runs/{run_id}/rerun", "rerun"),
    _route("POST", _REPO + "/actions/runs/{run_id}/rerun-failed-jobs", "rerun_failed_jobs"),
    _route("GET", _REPO + "/actions/runs/{run_id}/jobs", "jobs"),
    _route("GET", _REPO + "/actions/runs/{run_id}/logs", "run_logs"),
    _route("GET", _REPO + "/actions/jobs/{job_id}", "job"),
    _route("GET", _REPO + "/actions/jobs/{job_id}/logs", "job_logs"),
    _route("GET", _REPO + "/actions/secrets/public-key", "public_key"),
    _route("GET", _REPO + "/actions/secrets", "secrets"),
    _route("GET", _REPO + "/actions/secrets/{name}", "secret"),
    _route("PUT", _REPO + "/actions/secrets/{name}", "put_secret"),
    _route("DELETE", _REPO + "/actions/secrets/{name}", "delete_secret"),
]
ROUTE_NAMES = frozenset(route.name for route in API_ROUTES)
BLOB_ROUTES = [
    _route("GET", "/_blobs/logs/{run_id}/{attempt}.zip", "blob_run_logs"),
    _route("GET", "/_blobs/jobs/{job_id}.txt", "blob_job_logs"),
]
CONTROL_ROUTES = [
    _route("GET", "/_emulator/stats", "control_stats"),
    _route("POST", "/_emulator/faults", "control_faults"),
    _route("DELETE", "/_emulator/faults", "control_clear"),
    _route("GET", "/_emulator/deliveries", "control_deliveries"),
    _route("POST", "/_emulator/deliveries/{guid}/redeliver", "control_redeliver"),
]


def _match(routes: list[Route], method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    for route in routes:
        if route.method != method:
            continue
        for pattern in route.patterns:
            match = pattern.match(path)
            if match:
                return route, match.groupdict()
    return None


def _etag(body: bytes) -> str:
    return 'W/"' + hashlib.sha256(body).hexdigest() + '"'


def _etag_matches(header: str, etag: str) -> bool:
    if header.strip() == "*":
        return True
    opaque = etag.removeprefix("W/")
    return any(candidate.strip().removeprefix("W/") == opaque for candidate in header.split(","))


def _int_param(value: str | None, default: int) -> int:
    try:
        return int(value) if value not in (None, "") else default  # type: ignore[arg-type]
    except ValueError:
        return default


class Api:
    def __init__(self, emulator: GitHubEmulator) -> None:
        self.emu = emulator

    # -- dispatching a request -------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        emu = self.emu
        if request.path.startswith("/_blobs/"):
            matched = _match(BLOB_ROUTES, request.method, request.path)
            response = self._call(matched, request) if matched else error_response(404, "Not Found")
            emu.record_request(
                request.method,
                matched[0].name if matched else "unmatched",
                request.path,
                response.status,
                False,
            )
            return response
        if request.path.startswith("/_emulator/"):
            matched = _match(CONTROL_ROUTES, request.method, request.path) if emu.control else None
            response = self._call(matched, request) if matched else error_response(404, "Not Found")
            return response

        if emu.api_prefix:
            if not (request.path == emu.api_prefix or request.path.startswith(emu.api_prefix + "/")):
                return error_response(404, "Not Found")
            request.path = request.path[len(emu.api_prefix) :] or "/"
        matched = _match(API_ROUTES, request.method, request.path)
        route_name = matched[0].name if matched else "unmatched"
        response = self._api(request, matched, route_name)
        emu.record_request(request.method, route_name, request.path, response.status, response.counted)
        return response

    def _api(
        self, request: Request, matched: tuple[Route, dict[str, str]] | None, route_name: str
    ) -> Response:
        emu = self.emu
        fired = emu.faults.take(route_name, request.method, after=False)
        early = self._apply_faults(fired)
        if early is DROP:
            return DROP
        if early is not None:
            return self._finish(request, early, counted=False)
        if not request.headers.get("User-Agent"):
            return Response(
                403, NO_USER_AGENT.encode(), {"Content-Type": "text/plain; charset=utf-8"}, counted=False
            )
        authorization = request.headers.get("Authorization") or ""
        scheme, _, credential = authorization.partition(" ")
        if not authorization:
            return self._finish(request, error_response(401, "Requires authentication"), counted=False)
        if scheme.lower() not in ("bearer", "token") or not secrets.compare_digest(
            credential.strip().encode(), emu.token.encode()
        ):
            return self._finish(request, error_response(401, "Bad credentials"), counted=False)
        version = request.headers.get("X-GitHub-Api-Version") or DEFAULT_API_VERSION
        if version not in SUPPORTED_API_VERSIONS:
            return self._finish(
                request, error_response(400, f"API version {version!r} is not supported."), counted=False
            )
        free = route_name == "rate_limit"
        if not free and emu.rate_limiter.exhausted():
            message = (
                f"API rate limit exceeded for user ID {emu.actor_id}. If you reach out to GitHub Support "
                f"for help, please include the request ID {self._request_id()}."
            )
            return self._finish(request, error_response(403, message), counted=False)
        if matched is None:
            response = error_response(404, "Not Found")
        else:
            response = self._call(matched, request)
        if (
            request.method == "GET"
            and response.status == 200
            and response.headers.get("Content-Type", "").startswith("application/json")
        ):
            etag = _etag(response.body)
            response.headers["ETag"] = etag
            response.headers["Cache-Control"] = "private, max-age=60, s-maxage=60"
            response.headers["Vary"] = "Accept, Authorization, Cookie, X-GitHub-OTP"
            if_none_match = request.headers.get("If-None-Match")
            if if_none_match and _etag_matches(if_none_match, etag):
                # A 304 is free: it does not count against the primary rate limit.
                response = Response(
                    304, b"", {"ETag": etag, "Cache-Control": response.headers["Cache-Control"]}
                )
        counted = not free and response.status != 304
        after = self._apply_faults(emu.faults.take(route_name, request.method, after=True))
        if after is not None:
            response = after
        return self._finish(request, response, counted=counted, version=version)

    def _apply_faults(self, fired: list[Fault]) -> Response | None:
        result: Response | None = None
        for fault in fired:
            if fault.kind == "delay":
                time.sleep(fault.seconds)
            elif fault.kind == "drop":
                return DROP
            elif fault.kind == "status" and result is None:
                result = error_response(fault.status, fault.message or _reason(fault.status))
            elif fault.kind == "secondary_rate_limit" and result is None:
                message = fault.message or (
                    "You have exceeded a secondary rate limit. Please wait a few minutes before you "
                    "try again. If you reach out to GitHub Support for help, please include the "
                    f"request ID {self._request_id()}."
                )
                result = error_response(fault.status, message)
                if fault.retry_after is not None:
                    result.headers["retry-after"] = str(fault.retry_after)
        return result

    def _finish(
        self, request: Request, response: Response, *, counted: bool, version: str | None = None
    ) -> Response:
        if response is DROP:
            if counted:
                self.emu.rate_limiter.count()
            return response
        response.counted = counted
        if counted:
            self.emu.rate_limiter.count()
        response.headers.update(self.emu.rate_limiter.headers())
        response.headers.setdefault("X-GitHub-Media-Type", "github.v3; format=json")
        response.headers["X-GitHub-Request-Id"] = self._request_id()
        if version:
            response.headers["X-GitHub-Api-Version-Selected"] = version
        return response

    def _request_id(self) -> str:
        return uuid.uuid4().hex[:20].upper()

    def _call(self, matched: tuple[Route, dict[str, str]], request: Request) -> Response:
        try:
            return self._dispatch_to_handler(matched, request)
        except ApiError as exc:
            return error_response(exc.status, exc.message)

    def _dispatch_to_handler(self, matched: tuple[Route, dict[str, str]], request: Request) -> Response:
        route, params = matched
        if "repository_id" in params:
            if params.pop("repository_id") != str(self.emu.repository_id):
                raise ApiError(404, "Not Found")
        elif "owner" in params:
            owner, repo = params.pop("owner"), params.pop("repo")
            if f"{owner}/{repo}".lower() != self.emu.repository.lower():
                raise ApiError(404, "Not Found")
        handler: Callable[[Request, dict[str, str]], Response] = getattr(self, route.handler)
        return handler(request, params)

    # -- helpers ---------------------------------------------------------------------------

    def _site(self, request: Request) -> Site:
        return dataclasses.replace(self.emu.site, api_url=request.root + self.emu.api_prefix)

    def _run(self, params: Mapping[str, str]) -> Any:
        try:
            return self.emu.run(int(params["run_id"]))
        except (KeyError, ValueError):
            raise ApiError(404, "Not Found") from None

    def _page(self, request: Request, items: list[Any]) -> tuple[list[Any], dict[str, str]]:
        per_page = min(100, max(1, _int_param(request.query.get("per_page"), 30)))
        page = max(1, _int_param(request.query.get("page"), 1))
        last = max(1, math.ceil(len(items) / per_page))
        chosen = items[(page - 1) * per_page : page * per_page]
        links: list[str] = []
        path = request.path
        if self.emu.link_style == "repositories" and path.startswith("/repos/"):
            parts = path.split("/", 4)
            path = f"/repositories/{self.emu.repository_id}/" + (parts[4] if len(parts) > 4 else "")
        base = request.root + self.emu.api_prefix + path

        def link(number: int, rel: str) -> str:
            query = {**request.query, "per_page": str(per_page), "page": str(number)}
            return f'<{base}?{urlencode(query)}>; rel="{rel}"'

        if page > 1:
            links.append(link(min(page - 1, last), "prev"))
        if page < last:
            links.append(link(page + 1, "next"))
            links.append(link(last, "last"))
        if page > 1:
            links.append(link(1, "first"))
        return chosen, ({"Link": ", ".join(links)} if links else {})

    # -- endpoints -------------------------------------------------------------------------

    def _h_rate_limit(self, request: Request, params: dict[str, str]) -> Response:
        core = self.emu.rate_limiter.snapshot()
        other = {"limit": 30, "remaining": 30, "used": 0, "reset": core["reset"]}
        return json_response(
            200,
            {
                "resources": {
                    "core": core,
                    "search": {**other, "resource": "search"},
                    "graphql": {**core, "limit": 5000, "resource": "graphql"},
                },
                "rate": core,
            },
        )

    def _h_workflows(self, request: Request, params: dict[str, str]) -> Response:
        site = self._site(request)
        items = [site.workflow_json(workflow) for workflow in self.emu.workflows()]
        chosen, headers = self._page(request, items)
        return json_response(200, {"total_count": len(items), "workflows": chosen}, headers)

    def _h_workflow(self, request: Request, params: dict[str, str]) -> Response:
        try:
            workflow = self.emu.find_workflow(params["workflow_id"])
        except ApiError as exc:
            if exc.status == 404:
                raise
            raise ApiError(404, "Not Found") from None
        return json_response(200, self._site(request).workflow_json(workflow))

    def _h_dispatch(self, request: Request, params: dict[str, str]) -> Response:
        emu = self.emu
        text = request.body.decode("utf-8", "replace")
        if len(text) > MAX_DISPATCH_PAYLOAD:
            raise ApiError(422, emu.messages["payload_too_large"].format(size=len(text)))
        body = request.json()
        if not isinstance(body, dict):
            raise ApiError(400, "Problems parsing JSON")
        run = emu.dispatch_request(params["workflow_id"], body)
        version = request.headers.get("X-GitHub-Api-Version") or DEFAULT_API_VERSION
        details = version == "2026-03-10" or body.get("return_run_details") is True
        if emu.force_204 or not details:
            return Response(204)
        site = self._site(request)
        return json_response(
            200,
            {
                "workflow_run_id": run.id,
                "run_url": f"{site.repo_api}/actions/runs/{run.id}",
                "html_url": f"{site.html_url}/{site.repository}/actions/runs/{run.id}",
            },
        )

    def _runs_response(self, request: Request, workflow: Any) -> Response:
        filters = {
            key: request.query[key]
            for key in (
                "event",
                "status",
                "created",
                "branch",
                "actor",
                "head_sha",
                "check_suite_id",
                "exclude_pull_requests",
            )
            if key in request.query
        }
        runs = self.emu.list_runs(workflow, filters)
        site = self._site(request)
        chosen, headers = self._page(request, runs)
        with self.emu.lock:
            body = {"total_count": len(runs), "workflow_runs": [run.to_api(site) for run in chosen]}
        return json_response(200, body, headers)

    def _h_workflow_runs(self, request: Request, params: dict[str, str]) -> Response:
        try:
            workflow = self.emu.find_workflow(params["workflow_id"])
        except ApiError as exc:
            if exc.status == 404:
                raise
            raise ApiError(404, "Not Found") from None
        return self._runs_response(request, workflow)

    def _h_runs(self, request: Request, params: dict[str, str]) -> Response:
        return self._runs_response(request, None)

    def _h_run(self, request: Request, params: dict[str, str]) -> Response:
        run = self._run(params)
        with self.emu.lock:
            return json_response(200, run.to_api(self._site(request)))

    def _h_cancel(self, request: Request, params: dict[str, str], *, force: bool = False) -> Response:
        run = self._run(params)
        if not self.emu.cancel(run.id, force=force):
            raise ApiError(409, self.emu.messages["cancel_completed"])
        return json_response(202, {})

    def _h_force_cancel(self, request: Request, params: dict[str, str]) -> Response:
        return self._h_cancel(request, params, force=True)

    def _h_rerun(self, request: Request, params: dict[str, str]) -> Response:
        self.emu.rerun(self._run(params).id)
        return json_response(201, {})

    def _h_rerun_failed_jobs(self, request: Request, params: dict[str, str]) -> Response:
        self.emu.rerun(self._run(params).id, failed_only=True)
        return json_response(201, {})

    def _h_jobs(self, request: Request, params: dict[str, str]) -> Response:
        run = self._run(params)
        site = self._site(request)
        with self.emu.lock:
            jobs = list(run.jobs)
            if request.query.get("filter") == "all":
                jobs = [job for attempt in run.previous_attempts for job in attempt] + jobs
            items = [job.to_api(run, site) for job in jobs]
        chosen, headers = self._page(request, items)
        return json_response(200, {"total_count": len(items), "jobs": chosen}, headers)

    def _h_job(self, request: Request, params: dict[str, str]) -> Response:
        run, job = self._job(params)
        with self.emu.lock:
            return json_response(200, job.to_api(run, self._site(request)))

    def _job(self, params: Mapping[str, str]) -> tuple[Any, Any]:
        try:
            return self.emu.find_job(int(params["job_id"]))
        except (KeyError, ValueError):
            raise ApiError(404, "Not Found") from None

    def _h_run_logs(self, request: Request, params: dict[str, str]) -> Response:
        run = self._run(params)
        with self.emu.lock:
            if not run.jobs:
                raise ApiError(404, "Not Found")
            path = f"/_blobs/logs/{run.id}/{run.run_attempt}.zip"
        return Response(302, b"", {"Location": request.root + self.emu.sign_blob(path)})

    def _h_job_logs(self, request: Request, params: dict[str, str]) -> Response:
        _, job = self._job(params)
        path = f"/_blobs/jobs/{job.id}.txt"
        return Response(302, b"", {"Location": request.root + self.emu.sign_blob(path)})

    def _h_public_key(self, request: Request, params: dict[str, str]) -> Response:
        return json_response(200, {"key_id": self.emu.public_key_id, "key": self.emu.public_key})

    def _h_secrets(self, request: Request, params: dict[str, str]) -> Response:
        items = self.emu.secrets_json()
        chosen, headers = self._page(request, items)
        return json_response(200, {"total_count": len(items), "secrets": chosen}, headers)

    def _h_secret(self, request: Request, params: dict[str, str]) -> Response:
        found = self.emu.secret_json(params["name"])
        if found is None:
            raise ApiError(404, "Not Found")
        return json_response(200, found)

    def _h_put_secret(self, request: Request, params: dict[str, str]) -> Response:
        body = request.json()
        if not isinstance(body, dict):
            raise ApiError(400, "Problems parsing JSON")
        outcome = self.emu.put_encrypted_secret(params["name"], body)
        return json_response(201, {}) if outcome == "created" else Response(204)

    def _h_delete_secret(self, request: Request, params: dict[str, str]) -> Response:
        if not self.emu.delete_secret(params["name"]):
            raise ApiError(404, "Not Found")
        return Response(204)

    # -- signed blobs (no API token: the signature is the credential) ----------------------

    def _blob_refusal(self, request: Request) -> Response | None:
        if request.headers.get("Authorization"):
            # Real log storage refuses a second credential; a client that forwards its GitHub
            # token there is leaking it, so fail loudly.
            return Response(
                400,
                b'<?xml version="1.0" encoding="utf-8"?><Error><Code>InvalidAuthenticationInfo</Code>'
                b"<Message>Authorization header not allowed with a signed URL.</Message></Error>",
                {"Content-Type": "application/xml"},
            )
        if not self.emu.verify_blob(request.path, request.query.get("exp", ""), request.query.get("sig", "")):
            return Response(
                403,
                b'<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthenticationFailed</Code>'
                b"<Message>Signature not valid or expired.</Message></Error>",
                {"Content-Type": "application/xml"},
            )
        return None

    def _h_blob_run_logs(self, request: Request, params: dict[str, str]) -> Response:
        refusal = self._blob_refusal(request)
        if refusal is not None:
            return refusal
        try:
            run = self.emu.run(int(params["run_id"]))
            attempt = int(params["attempt"])
        except (KeyError, ValueError):
            return Response(404, b"BlobNotFound", {"Content-Type": "text/plain"})
        with self.emu.lock:
            if attempt == run.run_attempt:
                jobs = run.jobs
            elif 1 <= attempt <= len(run.previous_attempts):
                jobs = run.previous_attempts[attempt - 1]
            else:
                return Response(404, b"BlobNotFound", {"Content-Type": "text/plain"})
            data = logs_zip(jobs, step_files=self.emu.log_zip_step_files)
        return Response(200, data, {"Content-Type": "application/zip"})

    def _h_blob_job_logs(self, request: Request, params: dict[str, str]) -> Response:
        refusal = self._blob_refusal(request)
        if refusal is not None:
            return refusal
        try:
            _, job = self.emu.find_job(int(params["job_id"]))
        except (KeyError, ValueError):
            return Response(404, b"BlobNotFound", {"Content-Type": "text/plain"})
        with self.emu.lock:
            text = job.log_text()
        return Response(200, text.encode(), {"Content-Type": "text/plain; charset=utf-8"})

    # -- control (only with control=True; no authentication) -------------------------------

    def _h_control_stats(self, request: Request, params: dict[str, str]) -> Response:
        emu = self.emu
        with emu.lock:
            body = {
                "requests": [
                    {"method": method, "route": route, "count": count}
                    for (method, route), count in sorted(emu.stats.items())
                ],
                "rate_limit": emu.rate_limiter.snapshot(),
                "runs": [
                    {
                        "id": run.id,
                        "workflow": run.workflow.file_name,
                        "display_title": run.display_title,
                        "status": run.status,
                        "conclusion": run.conclusion,
                        "run_attempt": run.run_attempt,
                        "inputs": run.inputs,
                    }
                    for run in emu.runs
                ],
                "deliveries": [delivery.to_json() for delivery in emu.deliveries],
                "faults": [fault.to_json() for fault in emu.faults.pending()],
                "queue_delay": emu.queue_delay,
                "dry": None
                if emu.dry is None
                else {"conclusion": emu.dry.conclusion, "duration": emu.dry.duration},
            }
        return json_response(200, body)

    def _h_control_faults(self, request: Request, params: dict[str, str]) -> Response:
        body = request.json()
        for spec in body if isinstance(body, list) else [body]:
            if not isinstance(spec, dict):
                raise ApiError(400, "each fault must be a JSON object")
            try:
                apply_control(self.emu, spec)
            except (TypeError, ValueError) as exc:
                raise ApiError(422, str(exc)) from None
        return json_response(201, {"faults": [fault.to_json() for fault in self.emu.faults.pending()]})

    def _h_control_clear(self, request: Request, params: dict[str, str]) -> Response:
        self.emu.clear_faults()
        return Response(204)

    def _h_control_deliveries(self, request: Request, params: dict[str, str]) -> Response:
        return json_response(200, [delivery.to_json() for delivery in self.emu.deliveries])

    def _h_control_redeliver(self, request: Request, params: dict[str, str]) -> Response:
        try:
            delivery = self.emu.redeliver(params["guid"])
        except KeyError:
            raise ApiError(404, "Not Found") from None
        return json_response(202, delivery.to_json())


def apply_control(emu: GitHubEmulator, spec: Mapping[str, Any]) -> None:
    """One control instruction, as POSTed to /_emulator/faults (format in emulator/__init__.py)."""
    options = dict(spec)
    kind = options.pop("kind", None)
    route = options.pop("route", "*")
    if route != "*" and route not in ROUTE_NAMES:
        raise ValueError(f"unknown route {route!r}; known: {sorted(ROUTE_NAMES)}")
    if kind == "status":
        emu.fail_next(route, **options)
    elif kind == "delay":
        emu.delay_next(route, **options)
    elif kind == "drop":
        emu.drop_next(route, **options)
    elif kind == "secondary_rate_limit":
        emu.secondary_rate_limit(route, **options)
    elif kind == "rate_limit":
        emu.exhaust_rate_limit(**options)
    elif kind == "slow_queue":
        emu.slow_queue(**options)
    elif kind == "lose_webhooks":
        emu.lose_webhooks(**options)
    elif kind == "restore_webhooks":
        emu.restore_webhooks()
    elif kind == "dry":
        emu.set_dry(**options)
    elif kind == "clear":
        emu.clear_faults()
    else:
        raise ValueError(
            "kind must be one of status, delay, drop, secondary_rate_limit, rate_limit, slow_queue, "
            "lose_webhooks, restore_webhooks, dry, clear"
        )


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Server Error"


# -- the HTTP server ---------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    api: Api


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, keep-alive clients wait ~40 ms per answer.
    disable_nagle_algorithm = True
    server: _Server

    def version_string(self) -> str:
        return "github.com"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self) -> None:
        parts = urlsplit(self.path)
        host = self.headers.get("Host") or f"{self.server.server_address[0]}:{self.server.server_address[1]}"
        request = Request(
            method=self.command,
            path=parts.path,
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers=self.headers,  # type: ignore[arg-type]
            body=self._read_body(),
            root=f"http://{host}",
        )
        try:
            response = self.server.api.handle(request)
        except Exception:
            log.exception("emulator failed on %s %s", self.command, self.path)
            response = error_response(500, "Server Error")
        if response is DROP:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        try:
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            if response.status not in (204, 304) and self.command != "HEAD":
                self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if response.status not in (204, 304) and self.command != "HEAD":
                self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (e.g. its timeout fired during an injected delay).
            self.close_connection = True

    do_GET = _handle
    do_POST = _handle
    do_PUT = _handle
    do_DELETE = _handle
    do_PATCH = _handle


def make_server(emulator: GitHubEmulator, host: str, port: int) -> _Server:
    server = _Server((host, port), _Handler)
    server.api = Api(emulator)
    return server
