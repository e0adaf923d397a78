"""`GitHubEmulator`: the emulated repository's state, its Python API, and its lifecycle."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import logging
import re
import secrets as secrets_module
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Self

from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, SealedBox

from emulator.faults import Fault, FaultPlan, RateLimiter
from emulator.records import (
    CONCLUSIONS,
    RUN_STATUSES,
    DryPlan,
    EmulatedRun,
    Site,
    iso,
    utcnow,
)
from emulator.runner import RunExecutor
from emulator.webhooks import Delivery, WebhookSender
from emulator.workflows import (
    DEFAULT_MESSAGES,
    WORKFLOWS_DIR,
    ApiError,
    DispatchError,
    Workflow,
    WorkflowError,
    display_title,
    parse_workflow,
    resolve_inputs,
    typed_inputs,
    workflow_id_for,
)

log = logging.getLogger(__name__)

API_VERSIONS = ("2022-11-28", "2026-03-10")
# Only what a hosted runner would also have; the emulator's own environment (DATABASE_URL,
# DJANGO_SETTINGS_MODULE, ...) must not leak into steps and make them pass by accident.
DEFAULT_INHERITED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER", "LOGNAME", "SHELL")
REQUEST_LOG_LIMIT = 20_000  # stats keep counting; only the detailed log is trimmed
MAX_SECRETS = 100
MAX_SECRET_BYTES = 48 * 1024
_SECRET_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
_WORKFLOW_FILE_RE = re.compile(r"[^/\\]+\.ya?ml")
_WORKSPACE_IGNORE = shutil.ignore_patterns(
    ".git", ".venv", "venv", "node_modules", "__pycache__", ".pytest_cache"
)


@dataclass
class SecretRecord:
    value: str = field(repr=False)
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class RequestRecord:
    method: str
    route: str
    path: str
    status: int
    counted: bool
    at: float


class GitHubEmulator:
    """An emulated github.com for one repository, served on loopback.

        with GitHubEmulator(repo_root=".", repository="acme/imagesync", token="t") as emu:
            client = GitHubClient(Config(**emu.client_config()))

    Runs really execute the repository's workflow files unless `dry` is set.
    """

    def __init__(
        self,
        repo_root: str | Path = ".",
        repository: str = "acme/imagesync",
        token: str = "emulator-token",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        secrets: Mapping[str, str] | None = None,
        variables: Mapping[str, str] | None = None,
        extra_env: Mapping[str, str] | None = None,
        inherit_env: Iterable[str] = DEFAULT_INHERITED_ENV,
        refs: Iterable[str] | Mapping[str, str] = ("main",),
        default_branch: str = "main",
        actor: str = "imagesync-bot",
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        webhook_content_type: str = "json",
        webhook_timeout: float = 10.0,
        control: bool = False,
        api_prefix: str = "",
        html_url: str = "https://github.com",
        force_204: bool = False,
        requested_delay: float = 0.1,
        queue_delay: float = 1.0,
        max_concurrent_runs: int = 4,
        kill_grace: float = 5.0,
        timeout_conclusion: str = "timed_out",
        timeout_scale: float = 1.0,
        dry: DryPlan | str | None = None,
        rate_limit: int = 5000,
        log_url_ttl: float = 60.0,
        log_timestamps: bool = True,
        log_zip_step_files: bool = True,
        messages: Mapping[str, str] | None = None,
        strict_boolean: bool = True,
        unknown_actions: str = "fail",
        workspace: str | Path | None = None,
        copy_workspace: bool = False,
        link_style: str = "repositories",
        shutdown_grace: float = 5.0,
    ) -> None:
        if "/" not in repository:
            raise ValueError("repository must look like owner/repo")
        if unknown_actions not in ("fail", "skip"):
            raise ValueError("unknown_actions must be 'fail' or 'skip'")
        if link_style not in ("repositories", "repos"):
            raise ValueError("link_style must be 'repositories' or 'repos'")
        if timeout_conclusion not in CONCLUSIONS:
            raise ValueError(f"timeout_conclusion must be one of {sorted(CONCLUSIONS)}")
        self.repo_root = Path(repo_root).resolve()
        self.repository = repository
        self.token = token
        self.host = host
        self.port = port
        self.variables = dict(variables or {})
        self.extra_env = dict(extra_env or {})
        self.inherit_env = tuple(inherit_env)
        self.default_branch = default_branch
        self.actor = actor
        self.control = control
        self.api_prefix = "/" + api_prefix.strip("/") if api_prefix.strip("/") else ""
        self.html_url = html_url.rstrip("/")
        self.force_204 = force_204
        self.requested_delay = requested_delay
        self.queue_delay = queue_delay
        self.max_concurrent_runs = max_concurrent_runs
        self.kill_grace = kill_grace
        self.timeout_conclusion = timeout_conclusion
        self.timeout_scale = timeout_scale
        self.dry = _dry_plan(dry)
        self.log_url_ttl = log_url_ttl
        self.log_timestamps = log_timestamps
        self.log_zip_step_files = log_zip_step_files
        self.messages = {**DEFAULT_MESSAGES, **(messages or {})}
        self.strict_boolean = strict_boolean
        self.unknown_actions = unknown_actions
        self.workspace = Path(workspace).resolve() if workspace else self.repo_root
        self.copy_workspace = copy_workspace
        self.link_style = link_style
        self.shutdown_grace = shutdown_grace

        self.refs = self._normalise_refs(refs)
        self.lock = threading.RLock()
        self._changed = threading.Condition(self.lock)
        self.stats: Counter[tuple[str, str]] = Counter()
        self.request_log: list[RequestRecord] = []
        self.faults = FaultPlan()
        self.rate_limiter = RateLimiter(rate_limit)
        self.repository_id = 700_000_000 + int.from_bytes(
            hashlib.sha256(repository.encode()).digest()[:3], "big"
        )
        self.owner_id = 90_000_000 + self.repository_id % 1_000_000
        self.actor_id = 10_000_000 + self.repository_id % 1_000_000
        self._runs: dict[int, EmulatedRun] = {}
        self._run_numbers: Counter[int] = Counter()
        self._next_run_id = 10_000_000_000 + secrets_module.randbelow(10_000_000_000)
        self._next_job_id = 30_000_000_000 + secrets_module.randbelow(10_000_000_000)
        self._secrets: dict[str, SecretRecord] = {}
        self._workflow_cache: dict[str, tuple[tuple[str, int, int], Workflow]] = {}
        self._private_key = PrivateKey.generate()
        self.public_key_id = str(3_380_000_000_000_000_000 + secrets_module.randbelow(10**18))
        self.blob_key = secrets_module.token_bytes(32)
        self.webhooks = WebhookSender(
            webhook_url,
            webhook_secret,
            hook_id=400_000_000 + secrets_module.randbelow(100_000_000),
            target_id=self.repository_id,
            timeout=webhook_timeout,
            content_type=webhook_content_type,
        )
        self.executor = RunExecutor(self)
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._closed = False
        for name, value in (secrets or {}).items():
            self.set_secret(name, value)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> GitHubEmulator:
        from emulator.server import make_server

        if self._server is not None:
            return self
        self._server = make_server(self, self.host, self.port)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="github-emulator",
            daemon=True,
        )
        self._thread.start()
        self.webhooks.start()
        return self

    def close(self, grace: float | None = None) -> None:
        """Stop serving: wait up to `grace` seconds for runs to finish, cancel the rest."""
        if self._closed:
            return
        self._closed = True
        grace = self.shutdown_grace if grace is None else grace
        deadline = time.monotonic() + grace
        with self.lock:
            while self._active_runs() and time.monotonic() < deadline:
                self._changed.wait(max(0.0, min(0.2, deadline - time.monotonic())))
            active = self._active_runs()
            for run in active:
                run.cancel_reason = "cancelled"
                run.force_cancelled = True
                run.cancel_event.set()
        for run in active:
            if run.thread is not None:
                run.thread.join(self.kill_grace + 5)
        self.executor.kill_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
        self.webhooks.close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _active_runs(self) -> list[EmulatedRun]:
        return [run for run in self._runs.values() if run.status != "completed"]

    # -- addresses -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The server root (signed blob and control URLs live here)."""
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The API base URL to give a client (GitHub: https://api.github.com)."""
        return self.base_url + self.api_prefix

    @property
    def site(self) -> Site:
        return Site(
            api_url=self.url,
            html_url=self.html_url,
            repository=self.repository,
            repository_id=self.repository_id,
            owner_id=self.owner_id,
            actor=self.actor,
            actor_id=self.actor_id,
            default_branch=self.default_branch,
        )

    def client_config(self, **overrides: Any) -> dict[str, Any]:
        """Keyword arguments for `jobs.github.Config` pointing at this emulator."""
        return {"token": self.token, "repository": self.repository, "api_url": self.url, **overrides}

    # -- workflows -------------------------------------------------------------------------

    @property
    def workflows_dir(self) -> Path:
        return self.repo_root / WORKFLOWS_DIR

    def workflow_files(self) -> list[str]:
        if not self.workflows_dir.is_dir():
            return []
        return sorted(
            path.name
            for path in self.workflows_dir.iterdir()
            if path.is_file() and _WORKFLOW_FILE_RE.fullmatch(path.name)
        )

    def workflows(self) -> list[Workflow]:
        """Every workflow file that parses (files that do not are left out, as GitHub lists them
        with errors instead)."""
        found: list[Workflow] = []
        for name in self.workflow_files():
            try:
                found.append(self.load_workflow(name))
            except WorkflowError as exc:
                log.warning("%s", exc)
        return found

    def load_workflow(self, file_name: str) -> Workflow:
        """The parsed file as it is now (edits take effect on the next dispatch, as a push would)."""
        path = self.workflows_dir / file_name
        try:
            stat = path.stat()
            key = (file_name, stat.st_mtime_ns, stat.st_size)
            cached = self._workflow_cache.get(file_name)
            if cached is not None and cached[0] == key:
                return cached[1]
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise WorkflowError(f"cannot read {path}: {exc}") from exc
        workflow = parse_workflow(text, f"{WORKFLOWS_DIR}/{file_name}")
        self._workflow_cache[file_name] = (key, workflow)
        return workflow

    def find_workflow(self, workflow_id: str | int) -> Workflow:
        """The workflow for a file name or numeric id; ApiError 404, or 422 for a broken file."""
        key = str(workflow_id)
        names = self.workflow_files()
        if key.isdigit():
            matches = [name for name in names if workflow_id_for(f"{WORKFLOWS_DIR}/{name}") == int(key)]
        else:
            matches = [name for name in names if name == key]
        if not matches:
            raise ApiError(404, self.messages["not_found"])
        try:
            return self.load_workflow(matches[0])
        except WorkflowError as exc:
            log.warning("%s", exc)
            raise DispatchError(422, self.messages["invalid_workflow"]) from exc

    # -- refs ------------------------------------------------------------------------------

    @staticmethod
    def _normalise_refs(refs: Iterable[str] | Mapping[str, str]) -> dict[str, str]:
        items = refs.items() if isinstance(refs, Mapping) else ((name, None) for name in refs)
        normalised: dict[str, str] = {}
        for name, sha in items:
            full = name if name.startswith("refs/") else f"refs/heads/{name}"
            normalised[full] = sha or hashlib.sha1(full.encode()).hexdigest()
        return normalised

    def resolve_ref(self, ref: str) -> tuple[str, str]:
        """(full ref, sha) for a branch, tag or full ref name; 422 as GitHub when unknown."""
        candidates = [ref] if ref.startswith("refs/") else [f"refs/heads/{ref}", f"refs/tags/{ref}"]
        for candidate in candidates:
            if candidate in self.refs:
                return candidate, self.refs[candidate]
        raise DispatchError(422, self.messages["bad_ref"].format(ref=ref))

    # -- runs ------------------------------------------------------------------------------

    def dispatch(
        self, workflow: str | int, ref: str = "main", inputs: Mapping[str, Any] | None = None
    ) -> EmulatedRun:
        """What POST .../dispatches does, without HTTP (raises ApiError/DispatchError)."""
        return self.dispatch_request(workflow, {"ref": ref, "inputs": dict(inputs or {})})

    def dispatch_request(self, workflow_id: str | int, body: Mapping[str, Any]) -> EmulatedRun:
        ref = body.get("ref")
        if not isinstance(ref, str) or not ref:
            raise DispatchError(422, self.messages["missing_ref"])
        workflow = self.find_workflow(workflow_id)
        full_ref, sha = self.resolve_ref(ref)
        values = resolve_inputs(
            workflow, body.get("inputs"), messages=self.messages, strict_boolean=self.strict_boolean
        )
        return self._create_run(workflow, full_ref, sha, values)

    def _create_run(self, workflow: Workflow, ref: str, sha: str, inputs: dict[str, str]) -> EmulatedRun:
        with self.lock:
            self._next_run_id += 1 + secrets_module.randbelow(997)
            run_id = self._next_run_id
            self._run_numbers[workflow.id] += 1
            now = utcnow().replace(microsecond=0)
            head_branch = ref.removeprefix("refs/heads/").removeprefix("refs/tags/")
            title_contexts = {
                "github": {
                    "event_name": "workflow_dispatch",
                    "event": {"inputs": dict(inputs), "ref": ref, "workflow": workflow.path},
                    "actor": self.actor,
                    "ref": ref,
                    "ref_name": head_branch,
                    "repository": self.repository,
                    "repository_owner": self.repository.split("/")[0],
                    "run_id": str(run_id),
                    "run_number": str(self._run_numbers[workflow.id]),
                    "run_attempt": "1",
                    "sha": sha,
                    "workflow": workflow.name,
                },
                "inputs": typed_inputs(workflow, inputs),
                "vars": dict(self.variables),
            }
            run = EmulatedRun(
                id=run_id,
                workflow=workflow,
                run_number=self._run_numbers[workflow.id],
                event="workflow_dispatch",
                ref=ref,
                head_branch=head_branch,
                head_sha=sha,
                inputs=inputs,
                display_title=display_title(workflow, title_contexts),
                actor=self.actor,
                created_at=now,
                updated_at=now,
                run_started_at=now,
                dry=self.dry,
            )
            self._runs[run_id] = run
            self._changed.notify_all()
        self.executor.start(run)
        return run

    @property
    def runs(self) -> list[EmulatedRun]:
        """Every run, oldest first."""
        with self.lock:
            return list(self._runs.values())

    def run(self, run_id: int) -> EmulatedRun:
        with self.lock:
            try:
                return self._runs[int(run_id)]
            except (KeyError, ValueError):
                raise KeyError(f"no run {run_id}") from None

    def run_json(self, run_id: int) -> dict[str, Any]:
        with self.lock:
            return self.run(run_id).to_api(self.site)

    def find_job(self, job_id: int) -> tuple[EmulatedRun, Any]:
        with self.lock:
            for run in self._runs.values():
                for job in run.jobs:
                    if job.id == job_id:
                        return run, job
        raise KeyError(f"no job {job_id}")

    def touch(self, run: EmulatedRun) -> None:
        """Record that run changed (the caller holds the lock)."""
        with self.lock:
            run.updated_at = max(utcnow().replace(microsecond=0), run.updated_at)
            self._changed.notify_all()

    def notify(self) -> None:
        """Wake wait_for() callers after a change that is not the run's own (a log line)."""
        with self.lock:
            self._changed.notify_all()

    def new_job_id(self) -> int:
        with self.lock:
            self._next_job_id += 1 + secrets_module.randbelow(97)
            return self._next_job_id

    def wait_for(
        self, predicate: Callable[[], bool], timeout: float = 30.0, message: str = "condition"
    ) -> None:
        """Block until predicate() (called under the lock) holds, or TimeoutError."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"timed out after {timeout} s waiting for {message}")
                self._changed.wait(min(remaining, 0.5))

    def wait_for_run(
        self, run_id: int, status: str = "completed", timeout: float = 30.0, *, attempt: int | None = None
    ) -> EmulatedRun:
        """The run once it has `status` (or any later one; "completed" is last) and, if given,
        reached `attempt`."""
        order = ["requested", "queued", "pending", "waiting", "in_progress", "completed"]
        if status not in RUN_STATUSES:
            raise ValueError(f"status must be one of {order}")
        run = self.run(run_id)

        def reached() -> bool:
            if attempt is not None and run.run_attempt < attempt:
                return False
            return order.index(run.status) >= order.index(status)

        self.wait_for(reached, timeout, f"run {run_id} to be {status}")
        return run

    def cancel(self, run_id: int, *, force: bool = False) -> bool:
        """Ask a run to stop (POST .../cancel; force: .../force-cancel, which also stops
        always() steps); False when it has already completed."""
        run = self.run(run_id)
        with self.lock:
            if run.status == "completed":
                return False
            run.cancel_reason = "cancelled"
            run.force_cancelled = run.force_cancelled or force
            run.cancel_event.set()
            self.touch(run)
        return True

    def rerun(self, run_id: int, *, failed_only: bool = False) -> EmulatedRun:
        run = self.run(run_id)
        with self.lock:
            if run.status != "completed":
                raise ApiError(403, self.messages["rerun_running"])
            kept = {}
            if failed_only:
                failed = {job.key for job in run.jobs if job.conclusion not in ("success", "skipped")}
                if not failed:
                    raise ApiError(403, self.messages["rerun_no_failed_jobs"])
                # Jobs downstream of a failed job run again too.
                for spec in run.workflow.ordered_jobs():
                    if any(need in failed for need in spec.needs):
                        failed.add(spec.key)
                for job in run.jobs:
                    if job.key not in failed:
                        carried = copy.deepcopy(job)
                        carried.run_attempt = run.run_attempt + 1
                        kept[job.key] = carried
            run.previous_attempts.append(run.jobs)
            run.kept_jobs = kept
            run.jobs = []
            run.run_attempt += 1
            run.status = "requested"
            run.conclusion = None
            run.run_started_at = utcnow().replace(microsecond=0)
            run.cancel_event = threading.Event()
            run.cancel_reason = None
            run.force_cancelled = False
            run.summary = []
            run.dry = self.dry
            self.touch(run)
        self.executor.start(run)
        return run

    def list_runs(
        self, workflow: Workflow | None = None, filters: Mapping[str, str] | None = None
    ) -> list[EmulatedRun]:
        """Runs newest first, filtered like GET .../actions/runs (ApiError 422 on a bad filter)."""
        filters = {key: value for key, value in (filters or {}).items() if value not in (None, "")}
        checks: list[Callable[[EmulatedRun], bool]] = []
        if workflow is not None:
            checks.append(lambda run: run.workflow.id == workflow.id)
        if "event" in filters:
            checks.append(lambda run: run.event == filters["event"])
        if "branch" in filters:
            checks.append(lambda run: run.head_branch == filters["branch"])
        if "actor" in filters:
            checks.append(lambda run: run.actor == filters["actor"])
        if "head_sha" in filters:
            checks.append(lambda run: run.head_sha == filters["head_sha"])
        if "check_suite_id" in filters:
            checks.append(lambda run: str(run.id + 1) == filters["check_suite_id"])
        if "status" in filters:
            wanted = filters["status"]
            if wanted in RUN_STATUSES:
                checks.append(lambda run: run.status == wanted)
            elif wanted in CONCLUSIONS:
                checks.append(lambda run: run.conclusion == wanted)
            else:
                raise ApiError(422, f"Invalid request.\n\n{wanted!r} is not a valid status or conclusion.")
        if "created" in filters:
            within = parse_created(filters["created"])
            checks.append(lambda run: within(run.created_at))
        with self.lock:
            runs = [run for run in self._runs.values() if all(check(run) for check in checks)]
        runs.sort(key=lambda run: (run.created_at, run.id), reverse=True)
        if set(filters) - {"exclude_pull_requests"}:
            runs = runs[:1000]  # GitHub returns at most 1,000 runs when any filter is used
        return runs

    # -- secrets ---------------------------------------------------------------------------

    @property
    def public_key(self) -> str:
        return base64.b64encode(bytes(self._private_key.public_key)).decode()

    def check_secret_name(self, name: str) -> str:
        if not _SECRET_NAME_RE.fullmatch(name) or name.upper().startswith("GITHUB_"):
            raise ApiError(422, self.messages["secret_name_invalid"])
        return name.upper()

    def set_secret(self, name: str, value: str) -> str:
        """Store a repository secret; "created" or "updated" (runs read secrets when queued)."""
        key = self.check_secret_name(name)
        if len(value.encode()) > MAX_SECRET_BYTES:
            raise ApiError(422, self.messages["secret_too_large"])
        with self.lock:
            now = utcnow().replace(microsecond=0)
            record = self._secrets.get(key)
            if record is not None:
                record.value, record.updated_at = value, now
                return "updated"
            if len(self._secrets) >= MAX_SECRETS:
                raise ApiError(422, self.messages["too_many_secrets"])
            self._secrets[key] = SecretRecord(value, now, now)
            return "created"

    def put_encrypted_secret(self, name: str, body: Mapping[str, Any]) -> str:
        key = self.check_secret_name(name)
        encrypted, key_id = body.get("encrypted_value"), body.get("key_id")
        if not isinstance(encrypted, str) or not isinstance(key_id, str):
            raise ApiError(422, 'Invalid request.\n\n"encrypted_value" and "key_id" are required.')
        if key_id != self.public_key_id:
            raise ApiError(422, self.messages["secret_key_mismatch"])
        try:
            value = SealedBox(self._private_key).decrypt(base64.b64decode(encrypted, validate=True)).decode()
        except (CryptoError, ValueError) as exc:
            raise ApiError(422, self.messages["secret_undecryptable"]) from exc
        return self.set_secret(key, value)

    def delete_secret(self, name: str) -> bool:
        with self.lock:
            return self._secrets.pop(name.upper(), None) is not None

    def secret_values(self) -> dict[str, str]:
        with self.lock:
            return {name: record.value for name, record in self._secrets.items()}

    def secrets_json(self) -> list[dict[str, Any]]:
        with self.lock:
            return [
                {"name": name, "created_at": iso(record.created_at), "updated_at": iso(record.updated_at)}
                for name, record in sorted(self._secrets.items())
            ]

    def secret_json(self, name: str) -> dict[str, Any] | None:
        with self.lock:
            record = self._secrets.get(name.upper())
            if record is None:
                return None
            return {
                "name": name.upper(),
                "created_at": iso(record.created_at),
                "updated_at": iso(record.updated_at),
            }

    # -- workspace -------------------------------------------------------------------------

    def prepare_workspace(self, temp: Path) -> Path:
        """Where a job works: the workspace itself, or a fresh copy of it under the job's temp."""
        if not self.copy_workspace:
            return self.workspace
        target = temp / "workspace"
        shutil.copytree(self.workspace, target, ignore=_WORKSPACE_IGNORE, symlinks=True)
        return target

    # -- webhooks --------------------------------------------------------------------------

    def emit_workflow_run(self, run: EmulatedRun, action: str) -> Delivery | None:
        if not self.webhooks.enabled:
            return None
        with self.lock:
            site = self.site
            payload = {
                "action": action,
                "workflow_run": run.to_api(site),
                "workflow": site.workflow_json(run.workflow),
                "repository": site.repository_json(),
                "sender": site.user(run.actor, site.actor_id),
            }
        return self.webhooks.send("workflow_run", action, payload, run_id=run.id, run_attempt=run.run_attempt)

    @property
    def deliveries(self) -> list[Delivery]:
        return list(self.webhooks.deliveries)

    def wait_for_deliveries(
        self, count: int, timeout: float = 10.0, *, action: str | None = None, delivered: bool = True
    ) -> list[Delivery]:
        return self.webhooks.wait_for(count, timeout, action=action, delivered=delivered)

    def redeliver(self, guid: str) -> Delivery:
        return self.webhooks.redeliver(guid)

    # -- faults ----------------------------------------------------------------------------

    def fail_next(
        self,
        route: str = "*",
        *,
        times: int | None = 1,
        status: int = 502,
        after: bool = False,
        method: str | None = None,
    ) -> Fault:
        """The next `times` requests to route answer `status`; `after`: once the request took effect."""
        return self.faults.add(Fault("status", route, method, times, status=status, after=after))

    def delay_next(
        self,
        route: str = "*",
        seconds: float = 5.0,
        *,
        times: int | None = 1,
        after: bool = True,
        method: str | None = None,
    ) -> Fault:
        """Answer late (a client timeout); by default after the request took effect."""
        return self.faults.add(Fault("delay", route, method, times, seconds=seconds, after=after))

    def drop_next(
        self, route: str = "*", *, times: int | None = 1, after: bool = True, method: str | None = None
    ) -> Fault:
        """Close the connection without answering; by default after the request took effect."""
        return self.faults.add(Fault("drop", route, method, times, after=after))

    def secondary_rate_limit(
        self,
        route: str = "*",
        *,
        times: int | None = 1,
        retry_after: int | None = 60,
        status: int = 429,
        method: str | None = None,
    ) -> Fault:
        return self.faults.add(
            Fault("secondary_rate_limit", route, method, times, status=status, retry_after=retry_after)
        )

    def exhaust_rate_limit(self, reset_in: float = 60.0) -> None:
        """Spend the primary limit: requests answer 403 with remaining 0 until reset."""
        self.rate_limiter.exhaust(reset_in)

    def reset_rate_limit(self) -> None:
        self.rate_limiter.reset()

    def slow_queue(self, seconds: float) -> None:
        """Runs stay queued this long (applies to runs already waiting too)."""
        self.queue_delay = seconds

    def lose_webhooks(self, count: int | None = None) -> None:
        self.webhooks.lose(count)

    def restore_webhooks(self) -> None:
        self.webhooks.restore()

    def set_dry(
        self,
        conclusion: str | None = "success",
        duration: float = 0.0,
        output: str | Callable[[EmulatedRun], str] | None = None,
    ) -> None:
        """Runs dispatched from now on skip their steps and end with `conclusion` (None: execute)."""
        if conclusion is not None and conclusion not in CONCLUSIONS:
            raise ValueError(f"conclusion must be one of {sorted(CONCLUSIONS)}")
        self.dry = None if conclusion is None else DryPlan(conclusion, duration, output)

    def clear_faults(self) -> None:
        self.faults.clear()
        self.webhooks.restore()
        self.rate_limiter.reset()

    # -- request accounting ----------------------------------------------------------------

    def record_request(self, method: str, route: str, path: str, status: int, counted: bool) -> None:
        with self.lock:
            self.stats[(method, route)] += 1
            self.request_log.append(RequestRecord(method, route, path, status, counted, time.time()))
            if len(self.request_log) > REQUEST_LOG_LIMIT:
                del self.request_log[: REQUEST_LOG_LIMIT // 2]

    def request_count(self, route: str | None = None, method: str | None = None) -> int:
        with self.lock:
            return sum(
                count
                for (m, r), count in self.stats.items()
                if (route is None or r == route) and (method is None or m == method)
            )

    def reset_stats(self) -> None:
        with self.lock:
            self.stats.clear()
            self.request_log.clear()

    # -- signed blob URLs ------------------------------------------------------------------

    def sign_blob(self, path: str, ttl: float | None = None) -> str:
        expires = int(time.time() + (self.log_url_ttl if ttl is None else ttl))
        signature = hmac.new(self.blob_key, f"{path}|{expires}".encode(), hashlib.sha256).hexdigest()
        return f"{path}?exp={expires}&sig={signature}"

    def verify_blob(self, path: str, expires: str, signature: str) -> bool:
        if not expires.isdigit() or int(expires) < time.time():
            return False
        expected = hmac.new(self.blob_key, f"{path}|{expires}".encode(), hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, signature)


def _dry_plan(dry: DryPlan | str | None) -> DryPlan | None:
    if dry is None or isinstance(dry, DryPlan):
        return dry
    if dry not in CONCLUSIONS:
        raise ValueError(f"dry must be a conclusion, one of {sorted(CONCLUSIONS)}")
    return DryPlan(dry)


def parse_created(expression: str) -> Callable[[datetime], bool]:
    """The `created` filter in GitHub's search syntax: `>=X`, `>X`, `<=X`, `<X`, `A..B`, `X`."""

    def bounds(text: str) -> tuple[datetime, datetime]:
        text = text.strip()
        try:
            if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
                start = datetime.fromisoformat(text + "T00:00:00+00:00")
                return start, start + timedelta(days=1)
            moment = datetime.fromisoformat(text.replace(" ", "+"))
        except ValueError:
            raise ApiError(
                422, f"Invalid request.\n\n{expression!r} is not a valid created filter."
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment, moment + timedelta(seconds=1)

    text = expression.strip()
    if ".." in text:
        low, high = text.split("..", 1)
        lower = None if low.strip() in ("", "*") else bounds(low)[0]
        upper = None if high.strip() in ("", "*") else bounds(high)[1]
        return lambda moment: (lower is None or moment >= lower) and (upper is None or moment < upper)
    for operator in (">=", "<=", ">", "<"):
        if text.startswith(operator):
            start, end = bounds(text[len(operator) :])
            if operator == ">=":
                return lambda moment: moment >= start
            if operator == ">":
                return lambda moment: moment >= end
            if operator == "<=":
                return lambda moment: moment < end
            return lambda moment: moment < start
    start, end = bounds(text)
    return lambda moment: start <= moment < end
