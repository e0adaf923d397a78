"""A loopback emulator of the GitHub REST API endpoints imagesync uses, which runs the repository's
own workflow files locally.

    from emulator import GitHubEmulator

    with GitHubEmulator(repo_root=".", repository="acme/imagesync", token="t",
                        secrets={"ACR_TEAM": "..."}, queue_delay=0) as emu:
        client = GitHubClient(Config(**emu.client_config(min_mutation_interval=0)))
        result = client.dispatch_workflow("copy.yml", "main", {...})
        emu.wait_for_run(result.run_id, timeout=60)

Behaviour follows shared/github-api.md; `python -m emulator --help` starts one from the shell.

Out-of-process control (only with `control=True` / `--control`; no authentication):
    GET    /_emulator/stats                  requests by (method, route), rate limit, runs, deliveries
    POST   /_emulator/faults                 one instruction or a JSON list of them:
        {"kind": "status", "route": "dispatch", "status": 502, "times": 1, "after": true}
        {"kind": "delay", "route": "runs", "seconds": 5, "after": true}
        {"kind": "drop", "route": "dispatch", "after": true}
        {"kind": "secondary_rate_limit", "route": "*", "retry_after": 30, "status": 429}
        {"kind": "rate_limit", "reset_in": 60}          primary limit spent until reset
        {"kind": "slow_queue", "seconds": 30}
        {"kind": "lose_webhooks", "count": 2}           count null: every delivery
        {"kind": "restore_webhooks"}
        {"kind": "dry", "conclusion": "success", "duration": 0}   conclusion null: execute again
        {"kind": "clear"}
    DELETE /_emulator/faults                 clear faults, restore webhooks and the rate limit
    GET    /_emulator/deliveries             the webhook delivery log
    POST   /_emulator/deliveries/{guid}/redeliver
Route names are those of `ROUTE_NAMES` (dispatch, runs, workflow_runs, run, jobs, run_logs, ...).
"""

from __future__ import annotations

from emulator.core import DEFAULT_INHERITED_ENV, GitHubEmulator, parse_created
from emulator.faults import Fault
from emulator.records import DryPlan, EmulatedRun, JobRecord, StepRecord
from emulator.server import ROUTE_NAMES
from emulator.webhooks import Delivery
from emulator.workflows import DEFAULT_MESSAGES, ApiError, DispatchError, Workflow, WorkflowError

__all__ = [
    "DEFAULT_INHERITED_ENV",
    "DEFAULT_MESSAGES",
    "ROUTE_NAMES",
    "ApiError",
    "Delivery",
    "DispatchError",
    "DryPlan",
    "EmulatedRun",
    "Fault",
    "GitHubEmulator",
    "JobRecord",
    "StepRecord",
    "Workflow",
    "WorkflowError",
    "parse_created",
]
