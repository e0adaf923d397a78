"""Workflow files: parsing the subset of GitHub's syntax the emulator runs, and dispatch inputs.

Expressions live in `emulator.expressions`; this module re-exports what callers need.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from emulator.expressions import (
    Evaluator,
    ExpressionError,
    StatusChecks,
    evaluate_condition,
    evaluate_template,
    interpolate,
)

__all__ = [
    "DEFAULT_MESSAGES",
    "ApiError",
    "DispatchError",
    "Evaluator",
    "ExpressionError",
    "InputSpec",
    "JobSpec",
    "StatusChecks",
    "StepSpec",
    "Workflow",
    "WorkflowError",
    "coerce_input",
    "display_title",
    "evaluate_condition",
    "evaluate_template",
    "interpolate",
    "load_workflow",
    "parse_workflow",
    "resolve_inputs",
    "typed_inputs",
    "workflow_id_for",
]

WORKFLOWS_DIR = ".github/workflows"
MAX_INPUTS = 25
INPUT_TYPES = frozenset({"string", "choice", "boolean", "number", "environment"})
DEFAULT_JOB_TIMEOUT_MINUTES = 360

# What GitHub answers, keyed for `messages=` overrides. Sources: github-api.md; the entries marked
# there as UNVERIFIED (missing required input, unknown workflow) are the ones most likely to differ.
DEFAULT_MESSAGES: dict[str, str] = {
    "not_found": "Not Found",
    "no_dispatch_trigger": "Workflow does not have 'workflow_dispatch' trigger",
    "missing_ref": 'Invalid request.\n\n"ref" wasn\'t supplied.',
    "bad_ref": "No ref found for: {ref}",
    "unexpected_inputs": "Unexpected inputs provided: {names}",
    "missing_required": "Required input '{name}' not provided",
    "too_many_inputs": "Invalid request.\n\nNo more than 25 properties are allowed; {count} were supplied.",
    "invalid_choice": "Provided value '{value}' for input '{name}' not in the list of allowed values",
    "invalid_boolean": "Provided value '{value}' for input '{name}' is not a valid boolean",
    "inputs_not_object": "Invalid request.\n\nFor 'properties/inputs', {value} is not an object.",
    "payload_too_large": "Invalid request.\n\nThe payload is too large ({size} characters).",
    # GitHub refuses to dispatch a workflow file it cannot parse; the wording here is a guess.
    "invalid_workflow": "Workflow does not have 'workflow_dispatch' trigger",
    "secret_name_invalid": "Failed to add secret. Name is invalid.",
    "secret_too_large": "Failed to add secret. Value is too large (at most 48 KB).",
    "too_many_secrets": "Failed to add secret. A repository can have at most 100 secrets.",
    "secret_key_mismatch": "Invalid request.\n\nkey_id does not match the repository's public key.",
    "secret_undecryptable": "Invalid request.\n\nencrypted_value could not be decrypted.",
    "cancel_completed": "Cannot cancel a workflow run that is completed.",
    "rerun_running": "This workflow is already running",
    "rerun_no_failed_jobs": "This workflow run has no failed jobs to re-run.",
}


class WorkflowError(ValueError):
    """The file is not a workflow the emulator can read."""


class ApiError(Exception):
    """An answer GitHub would give instead of doing what was asked: HTTP status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class DispatchError(ApiError):
    pass


@dataclass(frozen=True)
class InputSpec:
    name: str
    type: str = "string"
    required: bool = False
    default: str | None = None
    options: tuple[str, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class StepSpec:
    index: int
    id: str | None
    name: Any
    uses: str | None
    run: str | None
    shell: str | None
    env: Mapping[str, Any]
    condition: Any
    with_: Mapping[str, Any]
    working_directory: Any
    timeout_minutes: Any
    continue_on_error: Any

    def default_name(self) -> str:
        if self.uses:
            return f"Run {self.uses}"
        first = (self.run or "").strip().splitlines()
        return f"Run {first[0]}" if first else f"Step {self.index + 1}"


@dataclass(frozen=True)
class JobSpec:
    key: str
    name: Any
    needs: tuple[str, ...]
    condition: Any
    env: Mapping[str, Any]
    steps: tuple[StepSpec, ...]
    timeout_minutes: Any
    continue_on_error: Any
    defaults_run: Mapping[str, Any]
    outputs: Mapping[str, Any]
    runs_on: Any
    ignored: tuple[str, ...] = ()  # keys present in the file that the emulator does not act on


@dataclass(frozen=True)
class Workflow:
    path: str  # ".github/workflows/copy.yml", as GitHub reports it
    name: str
    run_name: Any
    triggers: Mapping[str, Any]
    dispatch_inputs: Mapping[str, InputSpec] | None  # None: no workflow_dispatch trigger
    env: Mapping[str, Any]
    defaults_run: Mapping[str, Any]
    jobs: tuple[JobSpec, ...]
    id: int
    ignored: tuple[str, ...] = field(default=())

    @property
    def file_name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    def ordered_jobs(self) -> list[JobSpec]:
        """Jobs so that every job comes after the jobs it needs (file order otherwise)."""
        by_key = {job.key: job for job in self.jobs}
        done: list[JobSpec] = []
        seen: set[str] = set()
        visiting: set[str] = set()

        def visit(job: JobSpec) -> None:
            if job.key in seen:
                return
            if job.key in visiting:
                raise WorkflowError(f"jobs form a cycle through {job.key!r}")
            visiting.add(job.key)
            for need in job.needs:
                if need not in by_key:
                    raise WorkflowError(f"job {job.key!r} needs unknown job {need!r}")
                visit(by_key[need])
            visiting.discard(job.key)
            seen.add(job.key)
            done.append(job)

        for job in self.jobs:
            visit(job)
        return done


def workflow_id_for(path: str) -> int:
    """A stable, GitHub-sized numeric id for a workflow path."""
    digest = hashlib.sha256(path.encode()).digest()
    return 100_000_000 + int.from_bytes(digest[:4], "big") % 900_000_000


def load_workflow(repo_root: Path, file_name: str) -> Workflow:
    path = Path(repo_root) / WORKFLOWS_DIR / file_name
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise WorkflowError(f"cannot read {path}: {exc}") from exc
    return parse_workflow(text, f"{WORKFLOWS_DIR}/{file_name}")


def _mapping(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise WorkflowError(f"{what} must be a mapping")
    return {str(key): item for key, item in value.items()}


def _yaml_scalar_to_string(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parse_workflow(text: str, path: str) -> Workflow:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise WorkflowError(f"{path}: invalid YAML: {exc}") from exc
    if not isinstance(document, Mapping):
        raise WorkflowError(f"{path}: a workflow must be a mapping")
    # YAML 1.1 reads the bare key `on` as the boolean True.
    triggers_raw = document.get("on", document.get(True))
    if triggers_raw is None:
        raise WorkflowError(f"{path}: no 'on' section")
    triggers = _parse_triggers(triggers_raw, path)
    dispatch_inputs: dict[str, InputSpec] | None = None
    if "workflow_dispatch" in triggers:
        dispatch_inputs = _parse_inputs(triggers["workflow_dispatch"], path)
    jobs_raw = _mapping(document.get("jobs"), f"{path}: jobs")
    if not jobs_raw:
        raise WorkflowError(f"{path}: no jobs")
    jobs = tuple(_parse_job(key, value, path) for key, value in jobs_raw.items())
    known = {"name", "run-name", "on", True, "jobs", "env", "defaults", "permissions"}
    ignored = tuple(str(key) for key in document if key not in known)
    workflow = Workflow(
        path=path,
        name=str(document.get("name") or path),
        run_name=document.get("run-name"),
        triggers=triggers,
        dispatch_inputs=dispatch_inputs,
        env=_mapping(document.get("env"), f"{path}: env"),
        defaults_run=_mapping(_mapping(document.get("defaults"), "defaults").get("run"), "defaults.run"),
        jobs=jobs,
        id=workflow_id_for(path),
        ignored=ignored,
    )
    workflow.ordered_jobs()
    return workflow


def _parse_triggers(raw: Any, path: str) -> dict[str, Any]:
    if isinstance(raw, str):
        return {raw: None}
    if isinstance(raw, list):
        return {str(item): None for item in raw}
    if isinstance(raw, Mapping):
        return {str(key): value for key, value in raw.items()}
    raise WorkflowError(f"{path}: 'on' must be a string, a list or a mapping")


def _parse_inputs(raw: Any, path: str) -> dict[str, InputSpec]:
    inputs_raw = _mapping(_mapping(raw, f"{path}: workflow_dispatch").get("inputs"), f"{path}: inputs")
    if len(inputs_raw) > MAX_INPUTS:
        raise WorkflowError(f"{path}: at most {MAX_INPUTS} workflow_dispatch inputs are allowed")
    inputs: dict[str, InputSpec] = {}
    for name, spec_raw in inputs_raw.items():
        spec = _mapping(spec_raw, f"{path}: input {name}")
        kind = str(spec.get("type") or "string")
        if kind not in INPUT_TYPES:
            raise WorkflowError(f"{path}: input {name} has unknown type {kind!r}")
        options = tuple(str(option) for option in spec.get("options") or ())
        if kind == "choice" and not options:
            raise WorkflowError(f"{path}: choice input {name} needs options")
        inputs[name] = InputSpec(
            name=name,
            type=kind,
            required=spec.get("required") is True,
            default=_yaml_scalar_to_string(spec.get("default")),
            options=options,
            description=str(spec.get("description") or ""),
        )
    return inputs


_JOB_KEYS = {
    "name",
    "needs",
    "if",
    "env",
    "steps",
    "timeout-minutes",
    "continue-on-error",
    "defaults",
    "outputs",
    "runs-on",
    "permissions",
}
_STEP_KEYS = {
    "id",
    "name",
    "uses",
    "run",
    "shell",
    "env",
    "if",
    "with",
    "working-directory",
    "timeout-minutes",
    "continue-on-error",
}


def _parse_job(key: str, raw: Any, path: str) -> JobSpec:
    job = _mapping(raw, f"{path}: job {key}")
    if "uses" in job:
        raise WorkflowError(f"{path}: job {key}: reusable workflows are not supported by the emulator")
    needs_raw = job.get("needs") or ()
    needs = (needs_raw,) if isinstance(needs_raw, str) else tuple(str(item) for item in needs_raw)
    steps_raw = job.get("steps")
    if not isinstance(steps_raw, list) or not steps_raw:
        raise WorkflowError(f"{path}: job {key} has no steps")
    steps: list[StepSpec] = []
    for index, step_raw in enumerate(steps_raw):
        step = _mapping(step_raw, f"{path}: job {key} step {index + 1}")
        if ("uses" in step) == ("run" in step):
            raise WorkflowError(f"{path}: job {key} step {index + 1} needs exactly one of uses or run")
        unknown = set(step) - _STEP_KEYS
        if unknown:
            raise WorkflowError(f"{path}: job {key} step {index + 1}: unknown keys {sorted(unknown)}")
        steps.append(
            StepSpec(
                index=index,
                id=str(step["id"]) if step.get("id") is not None else None,
                name=step.get("name"),
                uses=str(step["uses"]) if "uses" in step else None,
                run=str(step["run"]) if "run" in step else None,
                shell=str(step["shell"]) if step.get("shell") is not None else None,
                env=_mapping(step.get("env"), f"{path}: step env"),
                condition=step.get("if"),
                with_=_mapping(step.get("with"), f"{path}: step with"),
                working_directory=step.get("working-directory"),
                timeout_minutes=step.get("timeout-minutes"),
                continue_on_error=step.get("continue-on-error", False),
            )
        )
    return JobSpec(
        key=key,
        name=job.get("name"),
        needs=needs,
        condition=job.get("if"),
        env=_mapping(job.get("env"), f"{path}: job env"),
        steps=tuple(steps),
        timeout_minutes=job.get("timeout-minutes", DEFAULT_JOB_TIMEOUT_MINUTES),
        continue_on_error=job.get("continue-on-error", False),
        defaults_run=_mapping(_mapping(job.get("defaults"), "defaults").get("run"), "defaults.run"),
        outputs=_mapping(job.get("outputs"), f"{path}: job outputs"),
        runs_on=job.get("runs-on"),
        ignored=tuple(sorted(str(item) for item in set(job) - _JOB_KEYS)),
    )


# -- dispatch inputs ---------------------------------------------------------------------------


def coerce_input(value: Any) -> str:
    """The string GitHub hands the workflow for a JSON input value that is not a string."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, separators=(",", ":"))


def resolve_inputs(
    workflow: Workflow,
    raw: Any,
    *,
    messages: Mapping[str, str] = DEFAULT_MESSAGES,
    strict_boolean: bool = True,
) -> dict[str, str]:
    """Every declared input as a string (given or default), or DispatchError(422) as GitHub."""
    if workflow.dispatch_inputs is None:
        raise DispatchError(422, messages["no_dispatch_trigger"])
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise DispatchError(422, messages["inputs_not_object"].format(value=json.dumps(raw)))
    if len(raw) > MAX_INPUTS:
        raise DispatchError(422, messages["too_many_inputs"].format(count=len(raw)))
    declared = workflow.dispatch_inputs
    unexpected = [name for name in raw if name not in declared]
    if unexpected:
        raise DispatchError(422, messages["unexpected_inputs"].format(names=json.dumps(unexpected)))
    values: dict[str, str] = {}
    for name, spec in declared.items():
        if name in raw:
            value = coerce_input(raw[name])
        elif spec.required and spec.default is None:
            raise DispatchError(422, messages["missing_required"].format(name=name))
        else:
            value = spec.default if spec.default is not None else ""
        if name in raw and spec.type == "choice" and value not in spec.options:
            raise DispatchError(422, messages["invalid_choice"].format(name=name, value=value))
        if name in raw and spec.type == "boolean" and strict_boolean and value not in ("true", "false"):
            raise DispatchError(422, messages["invalid_boolean"].format(name=name, value=value))
        values[name] = value
    return values


def typed_inputs(workflow: Workflow, values: Mapping[str, str]) -> dict[str, Any]:
    """The `inputs` context: booleans and numbers keep their type there (not in github.event.inputs)."""
    typed: dict[str, Any] = {}
    specs = workflow.dispatch_inputs or {}
    for name, value in values.items():
        spec = specs.get(name)
        if spec is not None and spec.type == "boolean":
            typed[name] = value.lower() == "true"
        elif spec is not None and spec.type == "number":
            try:
                typed[name] = float(value)
            except ValueError:
                typed[name] = value
        else:
            typed[name] = value
    return typed


def display_title(workflow: Workflow, contexts: Mapping[str, Any]) -> str:
    if workflow.run_name is None:
        return workflow.name
    try:
        return interpolate(workflow.run_name, Evaluator(contexts)) or workflow.name
    except ExpressionError:
        return workflow.name
