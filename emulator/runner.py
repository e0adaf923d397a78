"""Executing workflow runs locally, one background thread per run, like a hosted runner would.

A `run:` step becomes a script file run by the step's shell in its own process group (so cancel
and timeouts can stop everything it started); `actions/checkout` is a no-op because the job works
in the emulator's workspace (the repository root unless configured otherwise).
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import logging
import math
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from emulator.expressions import (
    Evaluator,
    ExpressionError,
    StatusChecks,
    evaluate_condition,
    evaluate_template,
    interpolate,
    to_number,
    truthy,
)
from emulator.records import DryPlan, EmulatedRun, JobRecord, StepRecord, log_stamp, utcnow
from emulator.workflows import JobSpec, StepSpec, WorkflowError, typed_inputs

if TYPE_CHECKING:
    from emulator.core import GitHubEmulator

log = logging.getLogger(__name__)

RUNNER_VERSION = "2.330.0"
# https://docs.github.com/en/actions/reference/workflows-and-actions/workflow-syntax#jobsjob_idstepsshell
# An explicit `shell: bash` adds pipefail; a `run:` without a shell on Linux gets plain `bash -e {0}`.
SHELLS: dict[str, list[str]] = {
    "bash": ["bash", "--noprofile", "--norc", "-eo", "pipefail", "{0}"],
    "sh": ["sh", "-e", "{0}"],
    "python": ["python3", "{0}"],
}
DEFAULT_SHELL_LINE = ["bash", "-e", "{0}"]
SCRIPT_SUFFIX = {"python": ".py"}
# Job keys the emulator cannot honour: running the job without them would be wrong.
UNSUPPORTED_JOB_KEYS = frozenset({"strategy", "container", "services"})
_COMMAND_RE = re.compile(r"^::([A-Za-z-]+)(?: ([^:]*))?::(.*)$")
_CHECKOUT_RE = re.compile(r"^actions/checkout@", re.IGNORECASE)
_POLL = 0.05


@dataclass
class _JobState:
    """What one job's steps share: exported env, PATH additions, step results."""

    workspace: Path
    temp: Path
    workflow_env: dict[str, str] = field(default_factory=dict)
    job_env: dict[str, str] = field(default_factory=dict)
    exported: dict[str, str] = field(default_factory=dict)
    paths: list[str] = field(default_factory=list)
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    failed: bool = False
    deadline: float | None = None
    timed_out: bool = False
    process_groups: list[int] = field(default_factory=list)  # background leftovers, killed at job end


class RunExecutor:
    def __init__(self, host: GitHubEmulator) -> None:
        self.host = host
        self._slots = threading.BoundedSemaphore(host.max_concurrent_runs)
        self._processes: dict[int, subprocess.Popen[bytes]] = {}
        self._processes_lock = threading.Lock()

    def start(self, run: EmulatedRun) -> None:
        thread = threading.Thread(
            target=self._lifecycle, args=(run,), name=f"emulated-run-{run.id}", daemon=True
        )
        run.thread = thread
        thread.start()

    # -- run lifecycle ---------------------------------------------------------------------

    def _lifecycle(self, run: EmulatedRun) -> None:
        host = self.host
        acquired = False
        try:
            if not run.cancel_event.wait(host.requested_delay):
                with host.lock:
                    run.status = "queued"
                    run.secrets = dict(host.secret_values())
                    run.token = "ghs_" + uuid.uuid4().hex
                    run.masks = _mask_values([*run.secrets.values(), run.token])
                    host.touch(run)
                host.emit_workflow_run(run, "requested")
            queued_since = time.monotonic()
            while not run.cancel_event.is_set():
                if time.monotonic() - queued_since >= host.queue_delay and self._slots.acquire(timeout=_POLL):
                    acquired = True
                    break
                run.cancel_event.wait(_POLL)
            if not acquired:
                self._finish(run, run.cancel_reason or "cancelled")
                return
            with host.lock:
                run.status = "in_progress"
                run.jobs = [self._plan_job(run, spec) for spec in run.workflow.ordered_jobs()]
                host.touch(run)
            host.emit_workflow_run(run, "in_progress")
            conclusion = self._execute(run)
            self._finish(run, conclusion)
        except Exception:
            log.exception("emulated run %s crashed", run.id)
            self._finish(run, "failure")
        finally:
            if acquired:
                self._slots.release()

    def _finish(self, run: EmulatedRun, conclusion: str) -> None:
        host = self.host
        with host.lock:
            now = utcnow()
            for job in run.jobs:
                if job.status != "completed":
                    job.status, job.conclusion, job.completed_at = "completed", conclusion, now
                    for step in job.steps:
                        if step.status != "completed":
                            step.status, step.conclusion = "completed", "skipped"
            run.status = "completed"
            run.conclusion = conclusion
            host.touch(run)
        host.emit_workflow_run(run, "completed")

    def _plan_job(self, run: EmulatedRun, spec: JobSpec) -> JobRecord:
        kept = run.kept_jobs.get(spec.key)
        if kept is not None:
            return kept
        evaluator = Evaluator(self._contexts(run, spec, None, {}))
        try:
            name = interpolate(spec.name, evaluator) if spec.name is not None else spec.key
        except ExpressionError:
            name = str(spec.name)
        job = JobRecord(
            id=self.host.new_job_id(),
            key=spec.key,
            name=name or spec.key,
            run_attempt=run.run_attempt,
            created_at=utcnow(),
        )
        names = ["Set up job"]
        for step in spec.steps:
            try:
                names.append(
                    interpolate(step.name, evaluator) if step.name is not None else step.default_name()
                )
            except ExpressionError:
                names.append(str(step.name))
        names.append("Complete job")
        job.steps = [StepRecord(number=index, name=name) for index, name in enumerate(names, start=1)]
        return job

    def _execute(self, run: EmulatedRun) -> str:
        results: dict[str, dict[str, Any]] = {}
        by_key = {job.key: job for job in run.jobs}
        timed_out = False
        ordered = run.workflow.ordered_jobs()
        for spec in ordered:
            job = by_key[spec.key]
            if job.status == "completed":  # carried over by rerun-failed-jobs
                results[spec.key] = {"result": job.conclusion, "outputs": dict(job.outputs)}
                continue
            if run.dry is not None:
                self._dry_job(run, spec, job, run.dry, last=spec is ordered[-1])
            else:
                timed_out = self._run_job(run, spec, job, results) or timed_out
            results[spec.key] = {"result": job.conclusion, "outputs": dict(job.outputs)}
        return self._conclusion(run, timed_out)

    def _conclusion(self, run: EmulatedRun, timed_out: bool) -> str:
        if run.cancel_event.is_set():
            return run.cancel_reason or "cancelled"
        if run.dry is not None:
            return run.dry.conclusion
        if timed_out:
            return self.host.timeout_conclusion
        job_conclusions = {job.conclusion for job in run.jobs}
        for conclusion in ("cancelled", "timed_out", "failure"):
            if conclusion in job_conclusions:
                return conclusion
        return "success"

    # -- jobs ------------------------------------------------------------------------------

    def _contexts(
        self,
        run: EmulatedRun,
        spec: JobSpec,
        state: _JobState | None,
        needs: Mapping[str, Any],
        env: Mapping[str, str] | None = None,
        job_status: str = "success",
    ) -> dict[str, Any]:
        host = self.host
        site = host.site
        workspace = str(state.workspace) if state else str(host.workspace)
        event = {
            "inputs": dict(run.inputs),
            "ref": run.ref,
            "repository": site.repository_json(),
            "sender": site.user(run.actor, site.actor_id),
            "workflow": run.workflow.path,
        }
        github = {
            "action": "",
            "actor": run.actor,
            "actor_id": str(site.actor_id),
            "api_url": site.api_url,
            "base_ref": "",
            "event": event,
            "event_name": run.event,
            "graphql_url": f"{site.api_url}/graphql",
            "head_ref": "",
            "job": spec.key,
            "ref": run.ref,
            "ref_name": run.head_branch,
            "ref_protected": False,
            "ref_type": "tag" if run.ref.startswith("refs/tags/") else "branch",
            "repository": site.repository,
            "repository_id": str(site.repository_id),
            "repository_owner": site.owner,
            "repository_owner_id": str(site.owner_id),
            "retention_days": "90",
            "run_id": str(run.id),
            "run_number": str(run.run_number),
            "run_attempt": str(run.run_attempt),
            "server_url": site.html_url,
            "sha": run.head_sha,
            "token": run.token,
            "triggering_actor": run.actor,
            "workflow": run.workflow.name,
            "workflow_ref": f"{site.repository}/{run.workflow.path}@{run.ref}",
            "workspace": workspace,
        }
        secrets = dict(run.secrets)
        secrets["GITHUB_TOKEN"] = run.token
        return {
            "github": github,
            "env": dict(env or {}),
            "vars": dict(host.variables),
            "inputs": typed_inputs(run.workflow, run.inputs),
            "secrets": secrets,
            "needs": dict(needs),
            "steps": {key: dict(value) for key, value in (state.steps if state else {}).items()},
            "job": {"status": job_status, "container": {}, "services": {}},
            "runner": {
                "name": "imagesync-emulator",
                "os": "Linux",
                "arch": "X64",
                "temp": str(state.temp) if state else "",
                "tool_cache": str(state.temp) if state else "",
                "environment": "github-hosted",
                "debug": "",
            },
            "strategy": {},
            "matrix": {},
        }

    def _run_job(self, run: EmulatedRun, spec: JobSpec, job: JobRecord, needs: Mapping[str, Any]) -> bool:
        """Execute one job; True when it hit its timeout-minutes."""
        host = self.host
        need_results = [needs.get(key, {}).get("result") for key in spec.needs]
        checks = StatusChecks(
            success=all(result == "success" for result in need_results) and not run.cancel_event.is_set(),
            failure=any(result in ("failure", "timed_out") for result in need_results),
            cancelled=run.cancel_event.is_set(),
        )
        needs = {key: needs[key] for key in spec.needs if key in needs}
        base = self._contexts(run, spec, None, needs)
        try:
            should_run = evaluate_condition(spec.condition, Evaluator(base, checks))
        except ExpressionError as exc:
            should_run = False
            log.warning("run %s job %s: bad if: %s", run.id, spec.key, exc)
        if not should_run:
            with host.lock:
                job.status = "completed"
                job.conclusion = "cancelled" if run.cancel_event.is_set() else "skipped"
                job.started_at = job.completed_at = utcnow()
                job.steps = []
                host.touch(run)
            return False

        temp = Path(tempfile.mkdtemp(prefix=f"emulator-run-{run.id}-"))
        state = _JobState(workspace=host.prepare_workspace(temp), temp=temp)
        with host.lock:
            job.status = "in_progress"
            job.started_at = utcnow()
            host.touch(run)
        try:
            self._set_up_job(run, spec, job, state, needs)
            for step_spec, step in zip(spec.steps, job.steps[1:-1], strict=True):
                self._run_step(run, spec, job, state, step_spec, step, needs)
            self._complete_job(run, spec, job, state, needs)
        finally:
            self._kill_groups(state)
            shutil.rmtree(temp, ignore_errors=True)
        with host.lock:
            job.status = "completed"
            job.completed_at = utcnow()
            if state.timed_out:
                job.conclusion = host.timeout_conclusion
            elif run.cancel_event.is_set():
                job.conclusion = "cancelled"
            elif state.failed and not truthy(self._safe_eval(spec.continue_on_error, base)):
                job.conclusion = "failure"
            else:
                job.conclusion = "success"
            host.touch(run)
        return state.timed_out

    def _safe_eval(self, value: Any, contexts: Mapping[str, Any]) -> Any:
        try:
            return evaluate_template(value, Evaluator(contexts))
        except ExpressionError:
            return value

    def _set_up_job(
        self, run: EmulatedRun, spec: JobSpec, job: JobRecord, state: _JobState, needs: Mapping[str, Any]
    ) -> None:
        step = job.steps[0]
        self._start_step(run, step)
        self._log(run, step, f"Current runner version: '{RUNNER_VERSION}' (imagesync GitHub emulator)")
        self._log(run, step, "Runner name: 'imagesync-emulator'")
        self._log(run, step, f"Workspace: {state.workspace}")
        self._log(run, step, f"Complete job name: {job.name}")
        problem: str | None = None
        unsupported = sorted(set(spec.ignored) & UNSUPPORTED_JOB_KEYS)
        if unsupported:
            problem = f"the emulator does not support {', '.join(unsupported)} in jobs"
        for key in sorted(set(spec.ignored) - UNSUPPORTED_JOB_KEYS) + list(run.workflow.ignored):
            self._log(run, step, f"##[warning]The emulator ignores '{key}'.")
        contexts = self._contexts(run, spec, state, needs)
        try:
            minutes = to_number(evaluate_template(spec.timeout_minutes, Evaluator(contexts)))
            if math.isnan(minutes) or minutes <= 0:
                raise ExpressionError(
                    f"timeout-minutes must be a positive number, not {spec.timeout_minutes!r}"
                )
            state.deadline = time.monotonic() + minutes * 60 * self.host.timeout_scale
            for name, value in run.workflow.env.items():
                state.workflow_env[name] = interpolate(value, Evaluator(contexts))
            contexts["env"] = dict(state.workflow_env)
            for name, value in spec.env.items():
                state.job_env[name] = interpolate(value, Evaluator(contexts))
        except ExpressionError as exc:
            problem = str(exc)
        if problem is not None:
            self._log(run, step, f"##[error]{problem}")
            state.failed = True
        self._end_step(run, step, "failure" if problem else "success")

    def _complete_job(
        self, run: EmulatedRun, spec: JobSpec, job: JobRecord, state: _JobState, needs: Mapping[str, Any]
    ) -> None:
        step = job.steps[-1]
        self._start_step(run, step)
        contexts = self._contexts(run, spec, state, needs, self._env_context(state))
        for name, value in spec.outputs.items():
            try:
                job.outputs[name] = interpolate(value, Evaluator(contexts))
            except ExpressionError as exc:
                self._log(run, step, f"##[warning]Could not evaluate output {name}: {exc}")
        self._log(run, step, "Cleaning up orphan processes")
        self._kill_groups(state)
        self._end_step(run, step, "success")

    # -- steps -----------------------------------------------------------------------------

    def _env_context(self, state: _JobState) -> dict[str, str]:
        return {**state.exported, **state.workflow_env, **state.job_env}

    def _run_step(
        self,
        run: EmulatedRun,
        spec: JobSpec,
        job: JobRecord,
        state: _JobState,
        step_spec: StepSpec,
        step: StepRecord,
        needs: Mapping[str, Any],
    ) -> None:
        cancelled = run.cancel_event.is_set()
        job_status = "cancelled" if cancelled else "failure" if state.failed else "success"
        contexts = self._contexts(run, spec, state, needs, self._env_context(state), job_status)
        contexts["github"]["action"] = step_spec.id or f"__run_{step_spec.index + 1}"
        checks = StatusChecks(
            success=not state.failed and not cancelled, failure=state.failed, cancelled=cancelled
        )
        evaluator = Evaluator(contexts, checks, lambda patterns: _hash_files(state.workspace, patterns))
        if state.timed_out:
            should_run = False
        else:
            try:
                should_run = evaluate_condition(step_spec.condition, evaluator)
            except ExpressionError as exc:
                self._start_step(run, step)
                self._log(run, step, f"##[error]{exc}")
                self._record_step(state, step_spec, "failure", "failure", {})
                self._end_step(run, step, "failure")
                state.failed = True
                return
        if not should_run:
            with self.host.lock:
                step.status, step.conclusion = "completed", "skipped"
                self.host.touch(run)
            self._record_step(state, step_spec, "skipped", "skipped", {})
            return

        self._start_step(run, step)
        outputs: dict[str, str] = {}
        try:
            if step_spec.uses is not None:
                outcome = self._uses_step(run, step, step_spec, state)
            else:
                outcome = self._script_step(run, job, step, step_spec, state, evaluator, outputs, cancelled)
            continue_on_error = truthy(evaluate_template(step_spec.continue_on_error, evaluator))
        except (ExpressionError, WorkflowError) as exc:
            self._log(run, step, f"##[error]{exc}")
            outcome, continue_on_error = "failure", False
        conclusion = "success" if outcome == "failure" and continue_on_error else outcome
        self._record_step(state, step_spec, outcome, conclusion, outputs)
        if conclusion == "failure":
            state.failed = True
        self._end_step(run, step, conclusion)

    def _record_step(
        self, state: _JobState, step_spec: StepSpec, outcome: str, conclusion: str, outputs: dict[str, str]
    ) -> None:
        if step_spec.id:
            state.steps[step_spec.id] = {"outputs": outputs, "outcome": outcome, "conclusion": conclusion}

    def _uses_step(self, run: EmulatedRun, step: StepRecord, step_spec: StepSpec, state: _JobState) -> str:
        uses = step_spec.uses or ""
        if _CHECKOUT_RE.match(uses):
            self._log(run, step, f"##[group]Run {uses}")
            self._log(run, step, f"Emulated checkout: the job works in {state.workspace} (nothing fetched)")
            self._log(run, step, "##[endgroup]")
            return "success"
        if self.host.unknown_actions == "skip":
            self._log(run, step, f"##[warning]The emulator cannot run the action '{uses}'; skipped it.")
            return "success"
        self._log(run, step, f"##[error]The emulator cannot run the action '{uses}'.")
        return "failure"

    def _script_step(
        self,
        run: EmulatedRun,
        job: JobRecord,
        step: StepRecord,
        step_spec: StepSpec,
        state: _JobState,
        evaluator: Evaluator,
        outputs: dict[str, str],
        started_cancelled: bool,
    ) -> str:
        step_env: dict[str, str] = {}
        for name, value in step_spec.env.items():
            step_env[name] = interpolate(value, evaluator)
        evaluator.contexts["env"] = {**evaluator.contexts["env"], **step_env}
        script = interpolate(step_spec.run or "", evaluator)
        defaults = {**run.workflow.defaults_run, **self._job_spec(run, job).defaults_run}
        shell_name = interpolate(step_spec.shell, evaluator) if step_spec.shell else None
        shell_name = shell_name or (str(defaults["shell"]) if defaults.get("shell") else None)
        workdir_raw = step_spec.working_directory or defaults.get("working-directory")
        workdir = state.workspace
        if workdir_raw:
            workdir = state.workspace / interpolate(workdir_raw, evaluator)
        timeout = (
            evaluate_template(step_spec.timeout_minutes, evaluator) if step_spec.timeout_minutes else None
        )

        suffix = SCRIPT_SUFFIX.get(shell_name or "", ".sh")
        script_path = state.temp / f"{uuid.uuid4()}{suffix}"
        script_path.write_text(script, encoding="utf-8")
        argv_template = self._shell_argv(shell_name)
        argv = [
            str(script_path) if part == "{0}" else part.replace("{0}", str(script_path))
            for part in argv_template
        ]
        files = {
            name: state.temp / f"{name.lower()}_{uuid.uuid4()}"
            for name in ("GITHUB_ENV", "GITHUB_OUTPUT", "GITHUB_PATH", "GITHUB_STATE", "GITHUB_STEP_SUMMARY")
        }
        for path in files.values():
            path.touch()

        env = self._process_env(run, job, state, step_spec, files)
        shown_env = {**state.workflow_env, **state.job_env, **step_env}
        env.update(shown_env)

        lines = script.rstrip("\n").splitlines() or [""]
        self._log(run, step, f"##[group]Run {lines[0]}")
        for line in lines:
            self._log(run, step, line)
        self._log(run, step, "shell: " + " ".join(argv_template))
        if shown_env:
            self._log(run, step, "env:")
            for name, value in shown_env.items():
                self._log(run, step, f"  {name}: {value}")
        self._log(run, step, "##[endgroup]")

        step_deadline = None
        if timeout is not None:
            minutes = to_number(timeout)
            if not math.isnan(minutes) and minutes > 0:
                step_deadline = time.monotonic() + minutes * 60 * self.host.timeout_scale
        if not workdir.is_dir():
            self._log(
                run, step, f"##[error]An error occurred trying to start process: {workdir} does not exist"
            )
            return "failure"
        outcome = self._run_process(run, step, argv, workdir, env, state, step_deadline, started_cancelled)
        self._apply_file_commands(run, step, state, files, outputs)
        return outcome

    def _job_spec(self, run: EmulatedRun, job: JobRecord) -> JobSpec:
        return next(spec for spec in run.workflow.jobs if spec.key == job.key)

    def _shell_argv(self, shell_name: str | None) -> list[str]:
        if not shell_name:
            return DEFAULT_SHELL_LINE
        if shell_name in SHELLS:
            return SHELLS[shell_name]
        parts = shlex.split(shell_name)
        if not any("{0}" in part for part in parts):
            parts.append("{0}")
        return parts

    def _process_env(
        self,
        run: EmulatedRun,
        job: JobRecord,
        state: _JobState,
        step_spec: StepSpec,
        files: Mapping[str, Path],
    ) -> dict[str, str]:
        host = self.host
        site = host.site
        env = {name: os.environ[name] for name in host.inherit_env if name in os.environ}
        defaults = {
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_ACTION": step_spec.id or f"__run_{step_spec.index + 1}",
            "GITHUB_ACTOR": run.actor,
            "GITHUB_ACTOR_ID": str(site.actor_id),
            "GITHUB_API_URL": site.api_url,
            "GITHUB_BASE_REF": "",
            "GITHUB_EVENT_NAME": run.event,
            "GITHUB_EVENT_PATH": str(self._event_file(run, state)),
            "GITHUB_GRAPHQL_URL": f"{site.api_url}/graphql",
            "GITHUB_HEAD_REF": "",
            "GITHUB_JOB": job.key,
            "GITHUB_REF": run.ref,
            "GITHUB_REF_NAME": run.head_branch,
            "GITHUB_REF_PROTECTED": "false",
            "GITHUB_REF_TYPE": "tag" if run.ref.startswith("refs/tags/") else "branch",
            "GITHUB_REPOSITORY": site.repository,
            "GITHUB_REPOSITORY_ID": str(site.repository_id),
            "GITHUB_REPOSITORY_OWNER": site.owner,
            "GITHUB_REPOSITORY_OWNER_ID": str(site.owner_id),
            "GITHUB_RETENTION_DAYS": "90",
            "GITHUB_RUN_ATTEMPT": str(run.run_attempt),
            "GITHUB_RUN_ID": str(run.id),
            "GITHUB_RUN_NUMBER": str(run.run_number),
            "GITHUB_SERVER_URL": site.html_url,
            "GITHUB_SHA": run.head_sha,
            "GITHUB_TRIGGERING_ACTOR": run.actor,
            "GITHUB_WORKFLOW": run.workflow.name,
            "GITHUB_WORKFLOW_REF": f"{site.repository}/{run.workflow.path}@{run.ref}",
            "GITHUB_WORKSPACE": str(state.workspace),
            "RUNNER_ARCH": "X64",
            "RUNNER_ENVIRONMENT": "github-hosted",
            "RUNNER_NAME": "imagesync-emulator",
            "RUNNER_OS": "Linux",
            "RUNNER_TEMP": str(state.temp),
            "RUNNER_TOOL_CACHE": str(state.temp / "_tool"),
        }
        env.update(defaults)
        env.update({name: str(path) for name, path in files.items()})
        env.update(host.extra_env)
        # The runner refuses to let GITHUB_ENV replace its own GITHUB_*/RUNNER_* variables.
        env.update(
            {
                name: value
                for name, value in state.exported.items()
                if name not in defaults and name not in files
            }
        )
        if state.paths:
            env["PATH"] = os.pathsep.join([*reversed(state.paths), env.get("PATH", os.defpath)])
        return env

    def _event_file(self, run: EmulatedRun, state: _JobState) -> Path:
        path = state.temp / "_github_workflow" / "event.json"
        if not path.exists():
            site = self.host.site
            path.parent.mkdir(parents=True, exist_ok=True)
            event = {
                "inputs": dict(run.inputs),
                "ref": run.ref,
                "repository": site.repository_json(),
                "sender": site.user(run.actor, site.actor_id),
                "workflow": run.workflow.path,
            }
            path.write_text(json.dumps(event, indent=2), encoding="utf-8")
        return path

    def _apply_file_commands(
        self,
        run: EmulatedRun,
        step: StepRecord,
        state: _JobState,
        files: Mapping[str, Path],
        outputs: dict[str, str],
    ) -> None:
        for command, target in (("GITHUB_ENV", state.exported), ("GITHUB_OUTPUT", outputs)):
            try:
                target.update(parse_env_file(files[command].read_text(encoding="utf-8", errors="replace")))
            except (OSError, ValueError) as exc:
                self._log(
                    run, step, f"##[error]Unable to process file command '{command[7:].lower()}': {exc}"
                )
                state.failed = True
        with contextlib.suppress(OSError):
            state.paths.extend(
                line.strip()
                for line in files["GITHUB_PATH"].read_text(encoding="utf-8").splitlines()
                if line.strip()
            )
        with contextlib.suppress(OSError):
            summary = files["GITHUB_STEP_SUMMARY"].read_text(encoding="utf-8", errors="replace")
            if summary:
                with self.host.lock:
                    run.summary.append(self._mask(run, summary))
                    self.host.touch(run)

    # -- processes -------------------------------------------------------------------------

    def _run_process(
        self,
        run: EmulatedRun,
        step: StepRecord,
        argv: Sequence[str],
        cwd: Path,
        env: Mapping[str, str],
        state: _JobState,
        step_deadline: float | None,
        started_cancelled: bool,
    ) -> str:
        """Run one step's process. A step chosen to run after the cancel (an always() step) is
        not stopped by that cancel, only by a force-cancel."""
        try:
            process = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            self._log(run, step, f"##[error]An error occurred trying to start process '{argv[0]}': {exc}")
            return "failure"
        assert process.stdout is not None
        pump = threading.Thread(target=self._pump, args=(run, step, process.stdout), daemon=True)
        pump.start()
        with self._processes_lock:
            self._processes[process.pid] = process
        reason: str | None = None
        try:
            while True:
                try:
                    process.wait(timeout=_POLL)
                    break
                except subprocess.TimeoutExpired:
                    pass
                now = time.monotonic()
                if run.cancel_event.is_set() and (run.force_cancelled or not started_cancelled):
                    reason = "cancelled"
                elif state.deadline is not None and now >= state.deadline:
                    reason = "job_timeout"
                elif step_deadline is not None and now >= step_deadline:
                    reason = "step_timeout"
                if reason:
                    self._terminate(process)
                    break
        finally:
            if reason is not None:
                _signal_group(process.pid, signal.SIGKILL)
            process.wait()
            # Like the hosted runner, the step ends when its process does: what it started in the
            # background keeps running (and holding the pipe) until the job's cleanup.
            if _group_alive(process.pid):
                state.process_groups.append(process.pid)
                pump.join(timeout=0.2)
            else:
                pump.join(timeout=5)
            with self._processes_lock:
                self._processes.pop(process.pid, None)
        if reason == "cancelled":
            self._log(run, step, "##[error]The operation was canceled.")
            return "cancelled"
        if reason == "job_timeout":
            state.timed_out = True
            self._log(run, step, "##[error]The job has exceeded the maximum execution time.")
            return "cancelled"
        if reason == "step_timeout":
            self._log(run, step, "##[error]The action has timed out.")
            return "failure"
        if process.returncode != 0:
            self._log(run, step, f"##[error]Process completed with exit code {process.returncode}.")
            return "failure"
        return "success"

    def _kill_groups(self, state: _JobState) -> None:
        groups, state.process_groups = state.process_groups, []
        for group in groups:
            _signal_group(group, signal.SIGTERM)
        deadline = time.monotonic() + self.host.kill_grace
        while any(_group_alive(group) for group in groups) and time.monotonic() < deadline:
            time.sleep(_POLL / 2)
        for group in groups:
            _signal_group(group, signal.SIGKILL)

    def _terminate(self, process: subprocess.Popen[bytes]) -> None:
        _signal_group(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.host.kill_grace
        while process.poll() is None and time.monotonic() < deadline:
            time.sleep(_POLL / 2)
        _signal_group(process.pid, signal.SIGKILL)

    def kill_all(self) -> None:
        with self._processes_lock:
            processes = list(self._processes.values())
        for process in processes:
            _signal_group(process.pid, signal.SIGKILL)

    def _pump(self, run: EmulatedRun, step: StepRecord, stream: IO[bytes]) -> None:
        with stream:
            for raw in iter(stream.readline, b""):
                self._output_line(run, step, raw.decode("utf-8", "replace").rstrip("\r\n"))

    def _output_line(self, run: EmulatedRun, step: StepRecord, text: str) -> None:
        match = _COMMAND_RE.match(text)
        if match is None:
            self._log(run, step, text)
            return
        command, properties = match.group(1).lower(), match.group(2) or ""
        # Command data arrives %-escaped (actions/toolkit, packages/core/src/command.ts).
        value = match.group(3).replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%")
        if command == "add-mask":
            with self.host.lock:
                run.masks |= _mask_values([value])
            return
        if command in ("error", "warning", "notice"):
            with self.host.lock:
                run.annotations.append(
                    {
                        "level": command,
                        "message": self._mask(run, value),
                        "properties": properties,
                        "step": step.name,
                    }
                )
            first, *rest = value.split("\n")
            self._log(run, step, f"##[{command}]{first}")
            for line in rest:
                self._log(run, step, line)
        elif command == "group":
            self._log(run, step, f"##[group]{value}")
        elif command == "endgroup":
            self._log(run, step, "##[endgroup]")
        elif command == "debug":
            return
        else:
            self._log(run, step, text)

    # -- step bookkeeping and logs ---------------------------------------------------------

    def _mask(self, run: EmulatedRun, text: str) -> str:
        for value in sorted(run.masks, key=len, reverse=True):
            if value in text:
                text = text.replace(value, "***")
        return text

    def _log(self, run: EmulatedRun, step: StepRecord, text: str) -> None:
        host = self.host
        with host.lock:
            masked = self._mask(run, text)
            step.lines.append(f"{log_stamp(utcnow())} {masked}" if host.log_timestamps else masked)
            host.notify()

    def _start_step(self, run: EmulatedRun, step: StepRecord) -> None:
        with self.host.lock:
            step.status = "in_progress"
            step.started_at = utcnow()
            self.host.touch(run)

    def _end_step(self, run: EmulatedRun, step: StepRecord, conclusion: str) -> None:
        with self.host.lock:
            step.status = "completed"
            step.conclusion = conclusion
            step.completed_at = utcnow()
            self.host.touch(run)

    # -- dry runs --------------------------------------------------------------------------

    def _dry_job(self, run: EmulatedRun, spec: JobSpec, job: JobRecord, plan: DryPlan, *, last: bool) -> None:
        host = self.host
        with host.lock:
            job.status = "in_progress"
            job.started_at = utcnow()
            host.touch(run)
        user_steps = job.steps[1:-1]
        pause = plan.duration / max(1, len(job.steps))
        conclusion = "success"
        for index, step in enumerate(job.steps):
            self._start_step(run, step)
            if run.cancel_event.wait(pause):
                self._end_step(run, step, "cancelled")
                conclusion = "cancelled"
                break
            is_last_user_step = bool(user_steps) and step is user_steps[-1]
            if step in user_steps:
                self._log(run, step, "(dry run: the emulator did not execute this step)")
            if is_last_user_step and last and plan.output is not None:
                output = plan.output(run) if callable(plan.output) else plan.output
                for line in output.splitlines():
                    self._output_line(run, step, line)
            step_conclusion = "success"
            if is_last_user_step and plan.conclusion in ("failure", "timed_out", "cancelled"):
                step_conclusion = "failure" if plan.conclusion == "failure" else "cancelled"
                conclusion = "failure" if plan.conclusion == "failure" else plan.conclusion
                if plan.conclusion == "failure":
                    self._log(run, step, "##[error]Process completed with exit code 1.")
            self._end_step(run, step, step_conclusion)
            if step_conclusion != "success" and index < len(job.steps) - 1:
                for rest in job.steps[index + 1 : -1]:
                    with host.lock:
                        rest.status, rest.conclusion = "completed", "skipped"
        with host.lock:
            job.status = "completed"
            job.conclusion = conclusion
            job.completed_at = utcnow()
            host.touch(run)


# -- helpers -----------------------------------------------------------------------------------


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


def _group_alive(group: int) -> bool:
    """True while a process of the group is running. Killed orphans linger as zombies until init
    reaps them, so on Linux /proc is read instead of trusting killpg(group, 0)."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the parenthesised command: state, ppid, pgrp, ...
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 2 and fields[2] == str(group) and fields[0] not in ("Z", "X"):
            return True
    return False


def _mask_values(values: Sequence[str]) -> set[str]:
    masks: set[str] = set()
    for value in values:
        if not value or not value.strip():
            continue
        masks.add(value)
        # Multi-line secrets are masked line by line, because logs are.
        masks.update(line.strip() for line in value.splitlines() if line.strip())
    return masks


def parse_env_file(text: str) -> dict[str, str]:
    """`NAME=value` lines and `NAME<<DELIMITER` heredocs, as in GITHUB_ENV and GITHUB_OUTPUT."""
    values: dict[str, str] = {}
    lines = text.replace("\r\n", "\n").split("\n")
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not line.strip():
            continue
        equals, heredoc = line.find("="), line.find("<<")
        if heredoc != -1 and (equals == -1 or heredoc < equals):
            name, delimiter = line[:heredoc], line[heredoc + 2 :]
            if not name or not delimiter:
                raise ValueError(f"invalid format '{line}'")
            collected: list[str] = []
            while index < len(lines) and lines[index] != delimiter:
                collected.append(lines[index])
                index += 1
            if index >= len(lines):
                raise ValueError(f"matching delimiter not found '{delimiter}'")
            index += 1
            values[name] = "\n".join(collected)
        elif equals > 0:
            values[line[:equals]] = line[equals + 1 :]
        else:
            raise ValueError(f"invalid format '{line}'")
    return values


def _hash_files(workspace: Path, patterns: Sequence[str]) -> str:
    paths: set[Path] = set()
    for pattern in patterns:
        for match in glob.glob(str(workspace / pattern), recursive=True):
            path = Path(match)
            if path.is_file():
                paths.add(path)
    if not paths:
        return ""
    combined = hashlib.sha256()
    for path in sorted(paths):
        combined.update(hashlib.sha256(path.read_bytes()).digest())
    return combined.hexdigest()
