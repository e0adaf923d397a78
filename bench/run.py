"""Run the benchmarks of issue 3 §6 and print the figures (docs/benchmarks.md shows a run).

    .venv/bin/python bench/run.py                 # everything, about 8 minutes on 2 cores
    .venv/bin/python bench/run.py --only e        # one figure group: a, b, c (c and d), e
    .venv/bin/python bench/run.py --quick         # fewer jobs, to try the bench out

Needs PostgreSQL and Redis on loopback (as the test suite does), Debian's docker-registry and
skopeo. Uses its own database (imagesync_bench, created and migrated here) and Redis DB 11, so it
does not disturb test runs. Stops every process and registry it started, on Ctrl-C too.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.engine import EngineResults, run_engine, summary  # noqa: E402
from bench.registry_sync import RegistryResults, run_registry_bench  # noqa: E402
from bench.stack import DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL, Stack  # noqa: E402


class BenchTimeout(Exception):
    pass


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass

    def version(argv: list[str]) -> str:
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout.strip().splitlines()[0]
        except (OSError, IndexError, subprocess.SubprocessError):
            return "?"

    def code() -> str:
        try:
            head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                  text=True, timeout=30).stdout.strip()
            dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "jobs", "emulator", ".github"],
                                   cwd=ROOT, capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return "?"
        return f"git {head}" + (" + uncommitted changes in jobs/, emulator/ or .github/" if dirty else "")

    return {
        "code measured": code(),
        "os": f"{platform.system()} {platform.release()} ({platform.machine()})",
        "cpu": f"{os.cpu_count()} × {cpu}",
        "memory": memory,
        "python": platform.python_version(),
        "postgresql": version(["psql", "--version"]),
        "redis": version(["redis-server", "--version"]),
        "skopeo": version(["skopeo", "--version"]),
        "load average at start": " ".join(f"{v:.2f}" for v in os.getloadavg()),
    }


# -- printing ---------------------------------------------------------------------------------


def fmt(value: float | None, unit: str = "s", digits: int = 2) -> str:
    if value is None:
        return "-"
    if unit == "ms":
        return f"{value * 1000:.0f} ms"
    return f"{value:.{digits}f} s"


def table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def attribution_table(engine: EngineResults) -> str:
    rows = []
    for name, phase in engine.phases.items():
        if name.startswith("design-"):
            how = "this design: the dispatch answer carries the run id (API 2026-03-10)"
        elif name.startswith("fallback204-"):
            how = "this design, server answers 204 (older GHES): request id in run-name → display_title"
        else:
            continue
        extra = f"{phase.runs_created} runs created"
        if phase.jobs_with_extra_runs:
            extra += f", {phase.jobs_with_extra_runs} jobs with more than one run"
        rows.append([how, str(phase.jobs), f"**{phase.correct}/{phase.jobs}**", extra])
    for seed in engine.seeds:
        at_once = "all at once" if seed.concurrency == seed.jobs else f"{seed.concurrency} at a time"
        rows.append([
            f"seed: dispatch (204), sleep {seed.sleep:.0f} s, take the newest run ({at_once})",
            str(seed.jobs),
            f"**{seed.correct}/{seed.jobs}**",
            f"{seed.distinct_runs_picked} distinct runs picked; dispatch answers "
            f"{dict(seed.dispatch_statuses)}; {seed.wall:.0f} s",
        ])
    return table(["method", "jobs", "attributed correctly", "notes"], rows)


def requests_table(engine: EngineResults) -> str:
    rows = []
    for name, phase in engine.phases.items():
        if name.startswith(("design-", "fallback204-", "hook-spaced")):
            continue
        routes = phase.routes
        other = sum(
            count for key, count in routes.items()
            if key.split(" ")[0] not in ("dispatch", "workflow_runs", "run", "jobs", "job_logs", "run_logs")
        )
        what = f"{phase.kind}, {phase.conclusion}"
        rows.append([
            name,
            phase.mode,
            f"{phase.jobs}" + (f" ({phase.repeat} × 1)" if phase.repeat > 1 else ""),
            what,
            f"{phase.run_seconds:.0f} s",
            f"**{phase.per_job:.2f}**",
            f"{phase.not_modified / phase.jobs:.2f}",
            str(routes["dispatch"]),
            str(routes["workflow_runs"]),
            str(routes["workflow_runs 304"]),
            str(routes["run"] + routes["run 304"]),
            str(routes["jobs"]),
            str(routes["job_logs"] + routes["run_logs"]),
            str(other),
            fmt(phase.wall, digits=1),
            f"{phase.cpu:.0%}",
        ])
    return table(
        ["scenario", "mode", "jobs", "kind, end", "run length", "counted requests / job", "304 / job",
         "dispatch", "workflow_runs 200", "workflow_runs 304", "run", "jobs", "logs", "other",
         "wall", "CPU busy"],
        rows,
    )


def latency_table(engine: EngineResults) -> str:
    rows = []
    for name, phase in engine.phases.items():
        c = summary(phase.commit_to_dispatch)
        d = summary(phase.completed_to_final)
        how = f"back to back, created in {phase.submit_span:.1f} s" if not phase.spacing else f"1 every {phase.spacing:.0f} s"
        if phase.repeat > 1:
            how = f"{phase.repeat} × 1, one after the other"
        rate = f"{phase.dispatch_rate:.1f}/s, {phase.dispatch_peak_minute} in 60 s" if phase.dispatch_rate else "-"
        rows.append([
            name, phase.mode, f"{phase.jobs} ({how})",
            fmt(c["p50"], "ms"), fmt(c["p95"], "ms"), fmt(c["max"], "ms"), rate,
            fmt(d["p50"], "ms"), fmt(d["p95"], "ms"), fmt(d["max"], "ms"),
        ])
    return table(
        ["scenario", "mode", "jobs", "commit→dispatch p50", "p95", "max", "dispatch POSTs (rate, peak)",
         "run completed→job final p50", "p95", "max"],
        rows,
    )


def registry_table(registry: RegistryResults) -> str:
    rows = []
    for tool in registry.tools.values():
        rows.append([
            tool.tool,
            f"**{tool.counts('source', 'manifest GET')}**",
            tool.counts("source", "manifest HEAD"),
            tool.counts("source", "total"),
            tool.counts("destination", "manifest GET"),
            tool.counts("destination", "manifest HEAD"),
            tool.counts("destination", "manifest PUT"),
            tool.counts("destination", "blob"),
            tool.counts("destination", "total"),
            f"**{tool.wall:.2f} s**" + f" ({', '.join(f'{w:.2f}' for w in tool.walls)})",
            "; ".join(tool.failures) or "ok",
        ])
    return table(
        ["re-sync of 20 unchanged tags", "source manifest GET (pulls)", "source manifest HEAD",
         "source requests", "dest manifest GET", "dest manifest HEAD", "dest manifest PUT",
         "dest blob requests", "dest requests", f"wall, median of {registry.reps} (each run)", "check"],
        rows,
    )


def targets(engine: EngineResults | None, registry: RegistryResults | None) -> str:
    rows: list[list[str]] = []

    def verdict(ok: bool) -> str:
        return "met" if ok else "**missed**"

    if engine is not None:
        phases = engine.phases
        for name, phase in phases.items():
            if name.startswith("design-"):
                rows.append([f"(a) all attributed, {name}", f"{phase.correct}/{phase.jobs}",
                             verdict(phase.correct == phase.jobs)])
        for name, phase in phases.items():
            plain = phase.kind == "copy" and phase.conclusion == "success"
            if name.startswith("poll-"):
                rows.append([f"(b) ≤ 3 requests/job, polling only, {name}", f"{phase.per_job:.2f}",
                             verdict(phase.per_job <= 3)])
            elif name.startswith("hook-") and plain and not phase.spacing:
                rows.append([f"(b) ≤ 1.2 requests/job, webhooks, {name}", f"{phase.per_job:.2f}",
                             verdict(phase.per_job <= 1.2)])
        for name, phase in phases.items():
            p95 = summary(phase.commit_to_dispatch)["p95"]
            if p95 is None or name.startswith("fallback") or phase.kind != "copy" or phase.conclusion != "success":
                continue
            how = "jobs arriving 1/s" if phase.spacing else (
                "one job at a time" if phase.repeat > 1 else f"burst of {phase.jobs}")
            rows.append([f"(c) commit→dispatch p95 ≤ 1 s, {name} ({how})", fmt(p95, "ms"), verdict(p95 <= 1)])
        for name, phase in phases.items():
            p95 = summary(phase.completed_to_final)["p95"]
            if p95 is not None and phase.mode == "webhooks" and not name.startswith("fallback"):
                rows.append([f"(d) completed→final p95 ≤ 1 s with webhooks, {name}", fmt(p95, "ms"),
                             verdict(p95 <= 1)])
    if registry is not None and "imagesync" in registry.tools and "skopeo" in registry.tools:
        ours, theirs = registry.tools["imagesync"], registry.tools["skopeo"]
        gets = max(c["manifest GET"] for c in ours.source) if ours.source else -1
        rows.append(["(e) 0 source manifest GETs", str(gets), verdict(gets == 0)])
        rows.append(["(e) faster than skopeo sync", f"{ours.wall:.2f} s vs {theirs.wall:.2f} s",
                     verdict(ours.wall < theirs.wall)])
    return table(["target", "measured", "verdict"], rows)


def report(info: dict[str, str], args: argparse.Namespace, engine: EngineResults | None,
           registry: RegistryResults | None, elapsed: float) -> str:
    parts = ["## Machine", table(["", ""], [[k, v] for k, v in info.items()])]
    parts.append(
        f"Settings: IMAGESYNC_POLL_INTERVAL={args.poll_interval} s, Celery worker concurrency "
        f"{args.concurrency} (prefork), gunicorn 2 sync workers, Redis {args.redis_url}, "
        f"whole run {elapsed:.0f} s."
        + (f" Foreign tasks seen by the worker: {engine.foreign_tasks} (should be 0)." if engine else "")
        + (" Portal settings: " + ", ".join(f"{k}={v}" for k, v in engine.portal_settings.items()) + "."
           if engine and engine.portal_settings else "")
    )
    if engine is not None and engine.phases:
        if any(n.startswith(("design-", "fallback")) for n in engine.phases) or engine.seeds:
            parts += ["## (a) Attribution of concurrent dispatches", attribution_table(engine)]
        if any(not n.startswith(("design-", "fallback204-", "hook-spaced")) for n in engine.phases):
            parts += ["## (b) GitHub requests per finished job", requests_table(engine)]
        parts += ["## (c) commit → dispatch, (d) run completed → job final", latency_table(engine)]
    if registry is not None and registry.tools:
        parts += [
            f"## (e) Re-sync of an unchanged {registry.tags}-tag repository, "
            f"{registry.delay * 1000:.0f} ms added to every registry request",
            registry_table(registry),
            f"First (filling) sync: {registry.first_sync_wall:.1f} s without delay. {registry.skopeo_version}.",
        ]
    parts += ["## Targets", targets(engine, registry)]
    return "\n\n".join(parts)


def to_json(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return to_json(asdict(value))
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [to_json(v) for v in value]
    return value


# -- main -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="a,b,c,e", help="figure groups to run: a, b, c (c and d), e")
    parser.add_argument("--quick", action="store_true", help="fewer jobs (not for the documented figures)")
    parser.add_argument("--poll-interval", type=int, default=5, help="IMAGESYNC_POLL_INTERVAL, seconds")
    parser.add_argument("--run-seconds", type=float, default=10.0, help="length of the dry runs in (b)")
    parser.add_argument("--fallback-jobs", type=int, default=50, help="jobs in the 204-fallback row of (a)")
    parser.add_argument("--concurrency", type=int, default=4, help="Celery worker processes")
    parser.add_argument("--delay", type=float, default=0.1, help="seconds added per registry request in (e)")
    parser.add_argument("--reps", type=int, default=3, help="repetitions of each re-sync in (e)")
    parser.add_argument("--max-seconds", type=int, default=1800, help="stop (and clean up) after this long")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL))
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (process logs)")
    args = parser.parse_args(argv)
    only = {part.strip() for part in args.only.split(",") if part.strip()}

    def stop(signum: int, frame: Any) -> None:  # noqa: ARG001
        raise KeyboardInterrupt(f"signal {signum}")

    def too_long(signum: int, frame: Any) -> None:  # noqa: ARG001
        raise BenchTimeout(f"the bench ran longer than --max-seconds={args.max_seconds}")

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGALRM, too_long)
    signal.alarm(args.max_seconds)

    info = machine()
    print("imagesync benchmarks — " + ", ".join(f"{k}: {v}" for k, v in info.items()), flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="imagesync-bench-"))
    started = time.monotonic()
    engine: EngineResults | None = None
    registry: RegistryResults | None = None
    stack: Stack | None = None
    status = 0
    try:
        if only & {"a", "b", "c"}:
            print("portal, Celery and the GitHub emulator (figures a–d):", flush=True)
            stack = Stack(
                workdir / "portal", database_url=args.database_url, redis_url=args.redis_url,
                poll_interval=args.poll_interval, worker_concurrency=args.concurrency,
            )
            neighbours = stack.redis_neighbours()
            if neighbours:
                print(f"WARNING: other clients use {args.redis_url}: {', '.join(neighbours[:5])}; "
                      "their tasks or purges can distort the figures (choose --redis-url)", flush=True)
            stack.start()
            engine = run_engine(stack, quick=args.quick, only=only & {"a", "b", "c"},
                                run_seconds=args.run_seconds, fallback_jobs=args.fallback_jobs,
                                log=lambda text: print(text, flush=True))
            stack.close()
            stack = None
        if "e" in only:
            print("registries (figure e):", flush=True)
            registry = run_registry_bench(workdir / "registries", delay=args.delay, reps=args.reps,
                                          log=lambda text: print(text, flush=True))
    except (KeyboardInterrupt, BenchTimeout) as exc:
        print(f"\nstopped: {exc or 'interrupted'}; cleaning up", file=sys.stderr, flush=True)
        status = 130 if isinstance(exc, KeyboardInterrupt) else 2
    finally:
        signal.alarm(0)
        if stack is not None:
            stack.close()
        if args.keep or status:
            print(f"work directory (logs): {workdir}", file=sys.stderr)
        else:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.monotonic() - started
    info["load average at end"] = " ".join(f"{v:.2f}" for v in os.getloadavg())
    text = report(info, args, engine, registry, elapsed)
    print("\n" + text)
    if args.json:
        args.json.write_text(json.dumps(
            {"machine": info, "args": {k: str(v) for k, v in vars(args).items()},
             "engine": to_json(engine), "registry": to_json(registry)}, indent=2, default=str))
    return status


if __name__ == "__main__":
    sys.exit(main())
