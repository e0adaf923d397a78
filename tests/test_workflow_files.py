"""Static checks of .github/workflows/copy.yml and sync.yml: hardening, and that they fit the script."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
SCRIPT = ROOT / ".github" / "scripts" / "imagesync_transfer.py"
SCRIPT_PATH = ".github/scripts/imagesync_transfer.py"

# Inputs the seed's exec.sh sends; they must keep working.
SEED_INPUTS = {
    "copy": {"source", "destination", "source_repo", "destination_repo"},
    "sync": {"source", "destination", "source_repo", "destination_scope"},
}
# Settings an operator (or the local test emulator) sets on the runner, never a dispatch input.
OPERATOR_SETTINGS = {
    "IMAGESYNC_INSECURE_REGISTRIES",
    "IMAGESYNC_MIN_PULLS_LEFT",
    "IMAGESYNC_COPY_TIMEOUT",
    "IMAGESYNC_SKOPEO",
}
ONLY_FOR = {
    "IMAGESYNC_DESTINATION_REPO": "copy",
    "IMAGESYNC_DESTINATION_SCOPE": "sync",
    "IMAGESYNC_INCLUDE_TAGS": "sync",
    "IMAGESYNC_EXCLUDE_TAGS": "sync",
}
# The only expressions a step's env may hold: inputs, the chosen secret, the Docker Hub secret and
# repository variables. Anything from github.event could carry attacker-chosen text elsewhere.
ALLOWED_ENV_EXPRESSION = re.compile(
    r"\$\{\{ (inputs\.[a-z_]+|secrets\[inputs\.credential\]|secrets\.SOURCE_CREDENTIAL|vars\.[A-Z_]+) \}\}"
)


def load(kind: str) -> dict:
    return yaml.safe_load((WORKFLOWS / f"{kind}.yml").read_text())


def triggers(workflow: dict) -> dict:
    # YAML 1.1 reads the bare key `on` as the boolean True.
    return workflow.get("on", workflow.get(True))


def inputs_of(workflow: dict) -> dict:
    return triggers(workflow)["workflow_dispatch"]["inputs"]


def steps_of(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def script_env_names() -> set[str]:
    source = SCRIPT.read_text()
    return set(re.findall(r'env\.get\(\s*"([A-Z_]+)"', source))


KINDS = ["copy", "sync"]


@pytest.mark.parametrize("kind", KINDS)
def test_only_manual_dispatch(kind):
    assert list(triggers(load(kind))) == ["workflow_dispatch"]


@pytest.mark.parametrize("kind", KINDS)
def test_no_expression_inside_run(kind):
    for step in steps_of(load(kind)):
        assert "${{" not in step.get("run", ""), step
    # Belt and braces on the raw text, in case a run block hides in a form the walk above misses.
    text = (WORKFLOWS / f"{kind}.yml").read_text()
    for block in re.findall(r"^\s*run:\s*(?:[|>][-+]?\n((?:\s{8,}.*\n?)*)|(.*))$", text, re.MULTILINE):
        assert "${{" not in "".join(block)


@pytest.mark.parametrize("kind", KINDS)
def test_least_privilege_token(kind):
    workflow = load(kind)
    assert workflow["permissions"] == {"contents": "read"}
    for job in workflow["jobs"].values():
        assert job.get("permissions", {"contents": "read"}) == {"contents": "read"}


@pytest.mark.parametrize("kind", KINDS)
def test_timeouts_are_set(kind):
    for job in load(kind)["jobs"].values():
        assert isinstance(job.get("timeout-minutes"), int) and 0 < job["timeout-minutes"] <= 360
        for step in job["steps"]:
            if "run" in step:
                assert 0 < step["timeout-minutes"] <= job["timeout-minutes"]


@pytest.mark.parametrize("kind", KINDS)
def test_actions_pinned_by_full_commit_sha(kind):
    text = (WORKFLOWS / f"{kind}.yml").read_text()
    uses_lines = [line for line in text.splitlines() if re.match(r"\s*(-\s*)?uses:", line)]
    assert uses_lines, "the script must be checked out"
    for line in uses_lines:
        assert re.search(r"uses:\s*[\w.-]+/[\w./-]+@[0-9a-f]{40}\s+#\s*v\d", line), line
    for step in steps_of(load(kind)):
        if "uses" in step:
            assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", step["uses"])
            if step["uses"].startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False


@pytest.mark.parametrize("kind", KINDS)
def test_run_name_carries_the_request_id(kind):
    assert "${{ inputs.request_id }}" in load(kind)["run-name"]


@pytest.mark.parametrize("kind", KINDS)
def test_inputs(kind):
    inputs = inputs_of(load(kind))
    assert len(inputs) < 25  # GitHub refuses more than 25 inputs
    assert SEED_INPUTS[kind] <= set(inputs)
    assert {"request_id", "credential"} <= set(inputs)
    assert inputs["source"]["default"] == "docker.io"
    assert inputs["destination"]["default"] == "registry.cn-beijing.aliyuncs.com"
    assert inputs["credential"]["default"] == "DESTINATION_CREDENTIAL"
    assert inputs["request_id"]["required"] is False
    assert inputs["source_repo"]["required"] is True
    for spec in inputs.values():
        assert spec["type"] == "string" and spec.get("description")


@pytest.mark.parametrize("kind", KINDS)
def test_every_input_reaches_the_script(kind):
    workflow = load(kind)
    run_steps = [step for step in steps_of(workflow) if "run" in step]
    assert len(run_steps) == 1
    step = run_steps[0]
    assert step["run"].strip() == f"python3 {SCRIPT_PATH} {kind}"
    assert SCRIPT.exists()
    env = step["env"]

    for name, value in env.items():
        assert ALLOWED_ENV_EXPRESSION.fullmatch(value), (name, value)
    used_inputs = {m for value in env.values() for m in re.findall(r"inputs\.([a-z_]+)", value)}
    assert used_inputs == set(inputs_of(workflow))

    read_by_script = script_env_names()
    needed = {n for n in read_by_script - OPERATOR_SETTINGS if ONLY_FOR.get(n, kind) == kind}
    assert needed <= set(env), needed - set(env)
    assert set(env) <= read_by_script, set(env) - read_by_script  # no misspelt variable
    assert env["DESTINATION_CREDENTIAL"] == "${{ secrets[inputs.credential] }}"
    assert env["IMAGESYNC_CREDENTIAL_NAME"] == "${{ inputs.credential }}"


@pytest.mark.parametrize("kind", KINDS)
def test_secrets_only_in_step_env(kind):
    workflow = load(kind)
    text = (WORKFLOWS / f"{kind}.yml").read_text()
    env_lines = {f"{k}: {v}" for step in steps_of(workflow) for k, v in step.get("env", {}).items()}
    for line in text.splitlines():
        if "secrets" in line and not line.lstrip().startswith("#"):
            assert line.strip() in env_lines, line
