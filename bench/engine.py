"""Figures (a)–(d) of issue 3 §6, measured on the real portal (gunicorn, Celery worker and beat,
PostgreSQL, Redis) against the GitHub emulator.

(a) attribution: do 200 jobs dispatched together each record their own run? This design (the
    dispatch answer carries the run id; the 204 fallback looks the request id up in the runs'
    display titles) against the seed's "dispatch, sleep, take the newest run".
(b) GitHub requests per finished job, polling only and with webhooks, 1 and 100 jobs.
(c) job commit → dispatch request received by GitHub.
(d) run completed on GitHub → job final in the database.

Runs are "dry" (the emulator's ``set_dry``): they go requested → queued → in_progress → completed
with the steps' timing but without executing skopeo, so 200 runs cost no registry work. Figure (e)
(bench/registry_sync.py) runs the real transfer script against real registries.
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests

from bench.stack import REPOSITORY, TOKEN, Stack, cpu_busy, load_snapshot, wait_for

# Routes as the emulator names them (emulator.server.API_ROUTES), grouped for the tables.
ROUTE_COLUMNS = ("dispatch", "workflow_runs", "runs", "run", "jobs", "job_logs", "run_logs")


@dataclass
class PhaseResult:
    name: str
    mode: str  # "polling only" | "webhooks"
    kind: str
    conclusion: str
    jobs: int
    repeat: int
    run_seconds: float
    spacing: float
    wall: float = 0.0
    submit_span: float = 0.0
    timed_out: bool = False
    statuses: Counter[str] = field(default_factory=Counter)
    routes: Counter[str] = field(default_factory=Counter)  # "workflow_runs", "workflow_runs 304", ...
    counted: int = 0  # requests that count against the rate limit
    not_modified: int = 0  # 304 answers (free)
    commit_to_dispatch: list[float] = field(default_factory=list)
    completed_to_final: list[float] = field(default_factory=list)
    correct: int = 0
    runs_created: int = 0
    jobs_with_extra_runs: int = 0
    cpu: float = 0.0
    load: tuple[float, float] = (0.0, 0.0)
    force_204: bool = False
    dispatch_rate: float | None = None  # dispatch POSTs per second, first to last
    dispatch_peak_minute: int = 0  # most dispatch POSTs within any 60 s

    @property
    def per_job(self) -> float:
        return self.counted / self.jobs if self.jobs else 0.0

    @property
    def per_job_with_304(self) -> float:
        return (self.counted + self.not_modified) / self.jobs if self.jobs else 0.0


@dataclass
class SeedResult:
    jobs: int
    sleep: float
    concurrency: int
    correct: int = 0
    distinct_runs_picked: int = 0
    dispatch_statuses: Counter[int] = field(default_factory=Counter)
    requests: int = 0
    wall: float = 0.0


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0..100), nearest-rank on the sorted values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summary(values: list[float]) -> dict[str, float | None]:
    return {
        "n": len(values),
        "p50": statistics.median(values) if values else None,
        "p95": percentile(values, 95),
        "max": max(values) if values else None,
    }


# -- jobs -------------------------------------------------------------------------------------


def create_job(stack: Stack, kind: str, label: str) -> tuple[Any, float]:
    """job_create as a view calls it, plus the moment its transaction committed (an on_commit
    callback registered before job_create's own, which enqueues the dispatch)."""
    from django.db import transaction

    from jobs import services

    committed: list[float] = []
    with transaction.atomic():
        transaction.on_commit(lambda: committed.append(time.time()))
        if kind == "copy":
            job, created = services.job_create(
                owner=stack.owner, namespace=stack.namespace, kind="copy",
                source=f"docker.io/library/nginx:{label}",
            )
        else:
            job, created = services.job_create(
                owner=stack.owner, namespace=stack.namespace, kind="sync", source=f"docker.io/bench/{label}",
            )
    if not created:
        raise RuntimeError(f"job {label} was not created (an identical job is active)")
    return job, committed[0]


def wait_idle(stack: Stack, timeout: float = 60) -> None:
    """No active job, no webhook delivery in flight, no task waiting: the next phase starts clean."""
    from jobs.models import SyncJob

    emulator = stack.emulator
    assert emulator is not None

    def idle() -> bool:
        if SyncJob.objects.filter(status__in=SyncJob.ACTIVE_STATUSES).exists():
            return False
        if any(not d.done.is_set() for d in emulator.deliveries):
            return False
        return stack.queue_length() == 0

    wait_for(idle, timeout, "the portal to be idle", interval=0.25)
    time.sleep(0.5)


def run_phase(
    stack: Stack,
    name: str,
    jobs: int,
    *,
    kind: str = "copy",
    conclusion: str = "success",
    run_seconds: float = 2.0,
    spacing: float = 0.0,
    repeat: int = 1,
    force_204: bool = False,
    timeout: float | None = None,
) -> PhaseResult:
    """Create ``jobs`` jobs (``spacing`` seconds apart, 0: back to back), wait until every one is
    final (and its report collected when one is due), ``repeat`` times in a row; then read the
    emulator's request log and the database."""
    from jobs.models import SyncJob

    emulator, instrument = stack.emulator, stack.instrument
    assert emulator is not None and instrument is not None
    result = PhaseResult(
        name=name, mode="webhooks" if stack.webhooks else "polling only", kind=kind,
        conclusion=conclusion, jobs=jobs * repeat, repeat=repeat, run_seconds=run_seconds,
        spacing=spacing, force_204=force_204,
    )
    if timeout is None:
        # Generous: the dispatch pacing (one per IMAGESYNC_DISPATCH_SPACING seconds for the whole
        # portal where the code has it, else one per second per worker process), the run, two
        # poll intervals and a margin.
        from django.conf import settings

        dispatch_spacing = getattr(settings, "IMAGESYNC_DISPATCH_SPACING", None)
        per_job = dispatch_spacing if dispatch_spacing is not None else 1 / max(1, stack.worker_concurrency)
        timeout = 60 + jobs * per_job * 1.5 + run_seconds + 2 * stack.poll_interval
    wait_idle(stack)
    emulator.set_dry(conclusion, run_seconds)
    emulator.force_204 = force_204
    emulator.reset_stats()
    load_start = load_snapshot()
    started = time.time()
    created: list[tuple[int, str, float]] = []
    needs_report = kind == "sync" or conclusion != "success"
    try:
        for round_number in range(repeat):
            batch: list[int] = []
            batch_start = time.time()
            for index in range(jobs):
                if spacing:
                    pause = batch_start + index * spacing - time.time()
                    if pause > 0:
                        time.sleep(pause)
                job, committed = create_job(stack, kind, f"{name}-{round_number}-{index}")
                created.append((job.pk, str(job.request_id), committed))
                batch.append(job.pk)
            if round_number == 0:
                result.submit_span = time.time() - batch_start

            def finished(ids: list[int] = batch) -> bool:
                done = SyncJob.objects.filter(pk__in=ids, status__in=SyncJob.FINISHED_STATUSES)
                if needs_report:
                    done = done.filter(report_collected=True)
                return done.count() == len(ids)

            try:
                wait_for(finished, timeout, f"the jobs of {name} to finish", interval=0.1)
            except TimeoutError:
                result.timed_out = True
                break
    finally:
        emulator.force_204 = False
    result.wall = time.time() - started
    time.sleep(0.5)  # a request still being answered is logged once it is
    load_end = load_snapshot()
    result.cpu = cpu_busy(load_start, load_end)
    result.load = (load_start[0], load_end[0])

    records = list(emulator.request_log)
    posts = sorted(r.at for r in records if r.route == "dispatch")
    if len(posts) > 1 and posts[-1] > posts[0]:
        result.dispatch_rate = (len(posts) - 1) / (posts[-1] - posts[0])
    result.dispatch_peak_minute = max(
        (sum(1 for later in posts[i:] if later - at < 60) for i, at in enumerate(posts)), default=0
    )
    for record in records:
        if record.route.startswith("blob_"):
            continue  # signed log downloads go to GitHub's storage, not the API
        key = record.route + (" 304" if record.status == 304 else "")
        result.routes[key] += 1
        if record.status == 304:
            result.not_modified += 1
        elif record.counted:
            result.counted += 1

    runs_by_request: dict[str, list[int]] = {}
    for run in emulator.runs:
        runs_by_request.setdefault(str(run.inputs.get("request_id", "")), []).append(run.id)
    ids = [pk for pk, _, _ in created]
    rows = {
        row["pk"]: row
        for row in SyncJob.objects.filter(pk__in=ids).values("pk", "status", "github_run_id", "finished_at")
    }
    for pk, request_id, committed in created:
        row = rows[pk]
        result.statuses[row["status"]] += 1
        own = runs_by_request.get(request_id, [])
        result.runs_created += len(own)
        if len(own) > 1:
            result.jobs_with_extra_runs += 1
        if own and row["github_run_id"] == own[0]:
            result.correct += 1
        received = instrument.dispatched.get(request_id)
        if received is not None:
            result.commit_to_dispatch.append(received - committed)
        completed = instrument.completed.get(row["github_run_id"]) if row["github_run_id"] else None
        if completed is not None and row["finished_at"] is not None:
            result.completed_to_final.append(row["finished_at"].timestamp() - completed)
    return result


# -- the seed's way ---------------------------------------------------------------------------


def seed_phase(
    stack: Stack, jobs: int, *, sleep: float, concurrency: int | None = None, run_seconds: float = 2.0
) -> SeedResult:
    """The seed's web page, faithfully: POST the dispatch with API version 2022-11-28 and no
    return_run_details (GitHub answers 204, no run id), sleep, list the workflow's runs and take
    the newest one as "this job's run". By default all ``jobs`` requests run concurrently, each in
    its own thread (one per web request, as the seed's page handled them); ``concurrency`` caps
    how many are in flight. The request id is put into the inputs only so the emulator's runs can
    be matched afterwards; the seed's method never reads it."""
    emulator = stack.emulator
    assert emulator is not None
    concurrency = concurrency or jobs
    result = SeedResult(jobs=jobs, sleep=sleep, concurrency=concurrency)
    wait_idle(stack)
    emulator.set_dry("success", run_seconds)
    emulator.lose_webhooks(None)  # the seed had no webhook; its runs would only be noise here
    emulator.reset_stats()
    base = f"{emulator.url}/repos/{REPOSITORY}/actions/workflows/copy.yml"
    headers = {
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
        "Authorization": f"Bearer {TOKEN}",
        "User-Agent": "imagesync-seed-page",
    }
    start = threading.Barrier(jobs) if concurrency == jobs else None

    def one(index: int) -> tuple[str, int, int | None]:
        request_id = f"seed-{concurrency}-{index:04d}"
        inputs = {
            "source": "docker.io",
            "destination": "registry.cn-hangzhou.aliyuncs.com",
            "source_repo": f"library/nginx:seed-{concurrency}-{index}",
            "destination_repo": f"bench/nginx:seed-{concurrency}-{index}",
            "request_id": request_id,
            "credential": "DESTINATION_CREDENTIAL",
        }
        if start is not None:
            start.wait(timeout=60)
        response = requests.post(
            f"{base}/dispatches", json={"ref": "main", "inputs": inputs}, headers=headers, timeout=60
        )
        time.sleep(sleep)
        listing = requests.get(f"{base}/runs", params={"per_page": 1}, headers=headers, timeout=60)
        runs = listing.json().get("workflow_runs") or []
        return request_id, response.status_code, (runs[0]["id"] if runs else None)

    started = time.time()
    try:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            outcomes = list(pool.map(one, range(jobs)))
    finally:
        emulator.restore_webhooks()
    result.wall = time.time() - started
    truth = {str(run.inputs.get("request_id", "")): run.id for run in emulator.runs}
    picked = set()
    for request_id, status, run_id in outcomes:
        result.dispatch_statuses[status] += 1
        picked.add(run_id)
        if run_id is not None and truth.get(request_id) == run_id:
            result.correct += 1
    result.distinct_runs_picked = len(picked)
    result.requests = emulator.request_count()
    return result


# -- the scenarios ----------------------------------------------------------------------------


@dataclass
class EngineResults:
    phases: dict[str, PhaseResult] = field(default_factory=dict)
    seeds: list[SeedResult] = field(default_factory=list)
    poll_interval: int = 0
    worker_concurrency: int = 0
    foreign_tasks: int = 0
    portal_settings: dict[str, Any] = field(default_factory=dict)


def run_engine(
    stack: Stack,
    *,
    quick: bool = False,
    only: set[str] | None = None,
    run_seconds: float = 10.0,
    fallback_jobs: int = 50,
    log=print,
) -> EngineResults:
    """Every scenario, each on a fresh emulated repository. ``quick`` shrinks the job counts
    (for trying the bench out; the documented figures come from a full run)."""
    from django.conf import settings

    results = EngineResults(poll_interval=stack.poll_interval, worker_concurrency=stack.worker_concurrency)
    results.portal_settings = {
        name: getattr(settings, name)
        for name in ("IMAGESYNC_POLL_INTERVAL", "IMAGESYNC_DISPATCH_SPACING", "IMAGESYNC_WEBHOOK_QUIET")
        if hasattr(settings, name)
    }
    many = 20 if quick else 100
    burst = 40 if quick else 200
    single_repeat = 2 if quick else 3
    wanted = only or {"a", "b", "c"}

    def phase(name: str, *args: Any, **kwargs: Any) -> None:
        log(f"  {name} ...")
        outcome = run_phase(stack, name, *args, **kwargs)
        results.phases[name] = outcome
        log(
            f"  {name}: {outcome.jobs} jobs in {outcome.wall:.1f} s, {outcome.per_job:.2f} counted requests/job"
            f" (+{outcome.not_modified} 304), statuses {dict(outcome.statuses)}"
            + (" TIMED OUT" if outcome.timed_out else "")
        )

    if "b" in wanted:
        stack.fresh_github(webhooks=False)
        phase("poll-1", 1, run_seconds=run_seconds, repeat=single_repeat)
        stack.fresh_github(webhooks=False)
        phase(f"poll-{many}", many, run_seconds=run_seconds)
        stack.fresh_github(webhooks=True)
        phase("hook-1", 1, run_seconds=run_seconds, repeat=single_repeat)
        stack.fresh_github(webhooks=True)
        phase(f"hook-{many}", many, run_seconds=run_seconds)
        stack.fresh_github(webhooks=True)
        phase("hook-failed-5", 5, conclusion="failure", run_seconds=2.0)
        phase("hook-sync-5", 5, kind="sync", run_seconds=2.0)
    if "c" in wanted:
        stack.fresh_github(webhooks=True)
        spaced = 10 if quick else 30
        phase(f"hook-spaced-{spaced}", spaced, spacing=1.0, run_seconds=1.0)
    if "a" in wanted:
        stack.fresh_github(webhooks=True)
        phase(f"design-{burst}", burst, run_seconds=2.0)
        for jobs, concurrency in ((burst, burst), (10 if quick else 40, stack.worker_concurrency)):
            log(f"  seed-{jobs} ({concurrency} at a time) ...")
            seed = seed_phase(stack, jobs, sleep=4.0, concurrency=concurrency)
            results.seeds.append(seed)
            log(f"  seed-{jobs} ({concurrency} at a time): {seed.correct}/{jobs} correct")
        stack.fresh_github(webhooks=True)
        fallback = min(fallback_jobs, burst)
        phase(f"fallback204-{fallback}", fallback, run_seconds=2.0, force_204=True)
    results.foreign_tasks = stack.foreign_tasks()
    return results
