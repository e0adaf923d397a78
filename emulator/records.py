"""What the emulator remembers about runs, jobs and steps, and how GitHub's API shows them."""

from __future__ import annotations

import io
import re
import threading
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from emulator.workflows import Workflow

RUN_STATUSES = frozenset({"requested", "queued", "pending", "waiting", "in_progress", "completed"})
CONCLUSIONS = frozenset(
    {
        "success",
        "failure",
        "cancelled",
        "skipped",
        "timed_out",
        "action_required",
        "neutral",
        "stale",
        "startup_failure",
    }
)


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def log_stamp(moment: datetime) -> str:
    # GitHub's log lines carry seven fractional digits.
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


@dataclass(frozen=True)
class Site:
    """Where the emulated GitHub lives, for the URLs inside API answers."""

    api_url: str  # e.g. http://127.0.0.1:PORT or http://127.0.0.1:PORT/api/v3
    html_url: str  # e.g. https://github.com
    repository: str  # owner/repo
    repository_id: int
    owner_id: int
    actor: str
    actor_id: int
    default_branch: str

    @property
    def owner(self) -> str:
        return self.repository.split("/", 1)[0]

    @property
    def repo_api(self) -> str:
        return f"{self.api_url}/repos/{self.repository}"

    def user(self, login: str, user_id: int, kind: str = "User") -> dict[str, Any]:
        return {
            "login": login,
            "id": user_id,
            "node_id": f"U_emulated{user_id}",
            "type": kind,
            "site_admin": False,
            "url": f"{self.api_url}/users/{login}",
            "html_url": f"{self.html_url}/{login}",
        }

    def repository_json(self) -> dict[str, Any]:
        name = self.repository.split("/", 1)[1]
        return {
            "id": self.repository_id,
            "node_id": f"R_emulated{self.repository_id}",
            "name": name,
            "full_name": self.repository,
            "private": True,
            "owner": self.user(self.owner, self.owner_id, "Organization"),
            "html_url": f"{self.html_url}/{self.repository}",
            "url": self.repo_api,
            "default_branch": self.default_branch,
        }

    def workflow_json(self, workflow: Workflow) -> dict[str, Any]:
        return {
            "id": workflow.id,
            "node_id": f"W_emulated{workflow.id}",
            "name": workflow.name,
            "path": workflow.path,
            "state": "active",
            "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z",
            "url": f"{self.repo_api}/actions/workflows/{workflow.id}",
            "html_url": f"{self.html_url}/{self.repository}/blob/{self.default_branch}/{workflow.path}",
            "badge_url": f"{self.html_url}/{self.repository}/workflows/{quote(workflow.name)}/badge.svg",
        }


@dataclass
class StepRecord:
    number: int
    name: str
    status: str = "queued"
    conclusion: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    lines: list[str] = field(default_factory=list)

    def to_api(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "conclusion": self.conclusion,
            "number": self.number,
            "started_at": iso(self.started_at),
            "completed_at": iso(self.completed_at),
        }


@dataclass
class JobRecord:
    id: int
    key: str
    name: str
    run_attempt: int
    created_at: datetime
    status: str = "queued"
    conclusion: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    steps: list[StepRecord] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)

    def log_text(self) -> str:
        return "".join(line + "\n" for step in self.steps for line in step.lines)

    def to_api(self, run: EmulatedRun, site: Site) -> dict[str, Any]:
        return {
            "id": self.id,
            "run_id": run.id,
            "workflow_name": run.workflow.name,
            "head_branch": run.head_branch,
            "run_url": f"{site.repo_api}/actions/runs/{run.id}",
            "run_attempt": self.run_attempt,
            "node_id": f"CR_emulated{self.id}",
            "head_sha": run.head_sha,
            "url": f"{site.repo_api}/actions/jobs/{self.id}",
            "html_url": f"{site.html_url}/{site.repository}/actions/runs/{run.id}/job/{self.id}",
            "status": self.status,
            "conclusion": self.conclusion,
            "created_at": iso(self.created_at),
            "started_at": iso(self.started_at),
            "completed_at": iso(self.completed_at),
            "name": self.name,
            "steps": [step.to_api() for step in self.steps],
            "check_run_url": f"{site.repo_api}/check-runs/{self.id}",
            "labels": ["ubuntu-latest"],
            "runner_id": 1 if self.started_at else None,
            "runner_name": "imagesync-emulator" if self.started_at else None,
            "runner_group_id": 0 if self.started_at else None,
            "runner_group_name": "GitHub Actions" if self.started_at else None,
        }


@dataclass(frozen=True)
class DryPlan:
    """Finish runs without executing their steps."""

    conclusion: str = "success"
    duration: float = 0.0
    output: str | Callable[[EmulatedRun], str] | None = None


@dataclass(eq=False)
class EmulatedRun:
    id: int
    workflow: Workflow
    run_number: int
    event: str
    ref: str  # refs/heads/main
    head_branch: str
    head_sha: str
    inputs: dict[str, str]
    display_title: str
    actor: str
    created_at: datetime
    updated_at: datetime
    run_started_at: datetime
    dry: DryPlan | None = None
    run_attempt: int = 1
    status: str = "requested"
    conclusion: str | None = None
    jobs: list[JobRecord] = field(default_factory=list)
    previous_attempts: list[list[JobRecord]] = field(default_factory=list)
    kept_jobs: dict[str, JobRecord] = field(default_factory=dict)  # rerun-failed-jobs carries these over
    summary: list[str] = field(default_factory=list)
    annotations: list[dict[str, str]] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict, repr=False)
    masks: set[str] = field(default_factory=set, repr=False)
    token: str = field(default="", repr=False)
    cancel_event: threading.Event = field(default_factory=threading.Event, repr=False)
    cancel_reason: str | None = None
    force_cancelled: bool = False  # also stops steps that run because of always()/cancelled()
    thread: threading.Thread | None = field(default=None, repr=False)

    @property
    def path(self) -> str:
        return self.workflow.path

    def to_api(self, site: Site) -> dict[str, Any]:
        base = f"{site.repo_api}/actions/runs/{self.id}"
        actor = site.user(self.actor, site.actor_id)
        return {
            "id": self.id,
            "name": self.workflow.name,
            "node_id": f"WFR_emulated{self.id}",
            "head_branch": self.head_branch,
            "head_sha": self.head_sha,
            "path": self.workflow.path,
            "display_title": self.display_title,
            "run_number": self.run_number,
            "event": self.event,
            "status": self.status,
            "conclusion": self.conclusion,
            "workflow_id": self.workflow.id,
            "check_suite_id": self.id + 1,
            "check_suite_node_id": f"CS_emulated{self.id + 1}",
            "url": base,
            "html_url": f"{site.html_url}/{site.repository}/actions/runs/{self.id}",
            "pull_requests": [],
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "actor": actor,
            "run_attempt": self.run_attempt,
            "referenced_workflows": [],
            "run_started_at": iso(self.run_started_at),
            "triggering_actor": actor,
            "jobs_url": f"{base}/jobs",
            "logs_url": f"{base}/logs",
            "check_suite_url": f"{site.repo_api}/check-suites/{self.id + 1}",
            "artifacts_url": f"{base}/artifacts",
            "cancel_url": f"{base}/cancel",
            "rerun_url": f"{base}/rerun",
            "previous_attempt_url": (
                f"{base}/attempts/{self.run_attempt - 1}" if self.run_attempt > 1 else None
            ),
            "workflow_url": f"{site.repo_api}/actions/workflows/{self.workflow.id}",
            "head_commit": {
                "id": self.head_sha,
                "tree_id": self.head_sha[::-1],
                "message": "emulated commit",
                "timestamp": iso(self.created_at),
                "author": {"name": self.actor, "email": f"{self.actor}@users.noreply.github.com"},
                "committer": {"name": "GitHub", "email": "noreply@github.com"},
            },
            "repository": site.repository_json(),
            "head_repository": site.repository_json(),
        }


_UNSAFE_NAME = re.compile(r'[\\/:*?"<>|\x00-\x1f]')


def _file_name(text: str) -> str:
    return _UNSAFE_NAME.sub("", text).strip()[:90] or "step"


def logs_zip(jobs: list[JobRecord], *, step_files: bool = True) -> bytes:
    """The run's logs laid out as GitHub's archives are commonly seen: `<n>_<job>.txt` at the top
    and `<job>/<step number>_<step name>.txt` (the layout is undocumented)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for index, job in enumerate(jobs, start=1):
            job_name = _file_name(job.name)
            archive.writestr(f"{index}_{job_name}.txt", job.log_text())
            if step_files:
                for step in job.steps:
                    text = "".join(line + "\n" for line in step.lines)
                    archive.writestr(f"{job_name}/{step.number}_{_file_name(step.name)}.txt", text)
    return buffer.getvalue()
