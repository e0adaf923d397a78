"""API benchmark (issue 5): job creation and the job list through /api/v1/, served by gunicorn,
with 100,000 jobs in PostgreSQL.

    .venv/bin/python bench/api.py                 # seed, serve, measure, clean up (~5.5 min)
    .venv/bin/python bench/api.py --json out.json # also keep the raw figures

Own database ``imagesync_apibench`` (jobs truncated and reseeded, then VACUUM ANALYZEd, every
run), Redis DB 10 (flushed before and after), a temporary IMAGESYNC_DATA_DIR, DEBUG=false.

Two parts, each with its own gunicorn (production settings):
1. closed loop: 20 clients each send their next request as soon as the previous answer arrives.
   gunicorn runs with API_RATE and API_JOB_CREATE_RATE raised to 1000000/minute, so the throttles
   still do their work on every request but never refuse one.
2. paced (--paced-seconds, 0 to skip): 20 clients, each its own user and token, send on a fixed
   schedule just under the product's default limits (a request every 1.05 s, every 6th a
   create: ~57 requests and ~9.5 creations a minute), against a gunicorn with those default
   limits (60 requests/minute per token, 10 creations/minute per user). No answer should be 429.

No worker runs: the jobs created stay pending; their dispatch messages are enqueued to Redis DB 10
on commit and flushed at the end. See docs/benchmarks-api.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/imagesync_apibench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/10"
CACHE_KEY_PREFIX = "imagesync-apibench"
REGISTRY = "registry.cn-hangzhou.aliyuncs.com"
NAMESPACES = ["apibench-a", "apibench-b", "apibench-c", "apibench-d", "apibench-e"]
USER_EMAIL = "apibench-{}@example.com"
STAFF_EMAIL = "apibench-staff@example.com"
REPOS_PER_NAMESPACE = 400  # img0..img399: the repositories the seeded jobs wrote
TARGET_CREATE_P95_MS = 50.0
TARGET_LIST_P95_MS = 100.0
# The closed-loop part's gunicorn: limits out of reach, the throttles still counting.
RAISED_LIMITS = {"API_RATE": "1000000/minute", "API_JOB_CREATE_RATE": "1000000/minute"}
# The paced part: a request every PACED_INTERVAL s per client (under 60 in any 60 s window even
# when one is sent late), every PACED_CREATE_EVERY-th a create (60 / 6.3 = 9.5 a minute, under 10).
PACED_INTERVAL = 1.05
PACED_CREATE_EVERY = 6
PACED_LISTS = [
    "/api/v1/jobs/",
    "/api/v1/jobs/?status=failed",
    "/api/v1/jobs/?search=img12",
    "/api/v1/jobs/?status=active",
]

# Seeded status mix: mostly finished; a few active (copies only, with distinct sources, as the
# one-active-identical-job constraint demands).
STATUS_MIX = [
    ("succeeded", 0.82),
    ("failed", 0.08),
    ("cancelled", 0.04),
    ("error", 0.02),
    ("pending", 0.01),
    ("queued", 0.01),
    ("running", 0.02),
]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, int(-(-q * len(sorted_values) // 100)))  # ceil(q/100 * n)
    return sorted_values[min(rank, len(sorted_values)) - 1]


def latency_summary(sorted_ms: list[float], errors: list[Any], wall: float) -> dict[str, Any]:
    """Counts, throughput and nearest-rank percentiles of one phase's successful requests."""
    return {
        "requests": len(sorted_ms),
        "errors": len(errors),
        "error_samples": errors[:5],
        "wall_s": round(wall, 2),
        "throughput_rps": round(len(sorted_ms) / wall, 1) if wall else 0.0,
        "p50_ms": round(percentile(sorted_ms, 50), 1),
        "p95_ms": round(percentile(sorted_ms, 95), 1),
        "p99_ms": round(percentile(sorted_ms, 99), 1),
        "max_ms": round(sorted_ms[-1], 1) if sorted_ms else None,
    }


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.workdir = Path(tempfile.mkdtemp(prefix="imagesync-apibench-"))
        self.port = free_port()
        self.gunicorn: subprocess.Popen[bytes] | None = None
        self.gunicorn_log = self.workdir / "gunicorn.log"
        self.tokens: list[str] = []
        self.staff_tokens: list[str] = []
        self.results: dict[str, Any] = {}
        self.deadline = time.monotonic() + args.max_seconds
        # Every create of the run (both parts) gets a distinct source: none is deduplicated.
        self.run_tag = f"r{int(time.time()) % 100000}"
        self.serial = itertools.count()

    # -- environment --------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("GITHUB_", "IMAGESYNC_", "CELERY_", "DJANGO_", "API_"))
            and k not in ("DATABASE_URL", "REDIS_URL")
        }
        env.update(
            DJANGO_SETTINGS_MODULE="imagesync_site.settings",
            DATABASE_URL=self.args.database_url,
            REDIS_URL=self.args.redis_url,
            CACHE_KEY_PREFIX=CACHE_KEY_PREFIX,
            IMAGESYNC_DATA_DIR=str(self.workdir / "data"),
            DEBUG="false",
            SECRET_KEY="apibench-secret-key-not-for-production-0123456789abcdef",
            ALLOWED_HOSTS="127.0.0.1",
            SECURE_SSL_REDIRECT="false",
            LOG_LEVEL="WARNING",
            # No worker runs, so GitHub is never called; dummies keep any check from failing.
            GITHUB_API_URL="http://127.0.0.1:9",
            GITHUB_TOKEN="apibench-dummy-token",
            GITHUB_REPOSITORY="acme/imagesync",
            GITHUB_WEBHOOK_SECRET="apibench-dummy-secret",
            PYTHONUNBUFFERED="1",
        )
        return env

    def redis_flush(self) -> None:
        import redis

        client = redis.Redis.from_url(self.args.redis_url)
        others = [
            c
            for c in client.client_list()
            if int(c.get("db", -1)) == client.connection_pool.connection_kwargs.get("db", 0)
        ]
        if len(others) > 1:
            log(f"warning: {len(others) - 1} other client(s) connected to {self.args.redis_url}")
        client.flushdb()
        client.close()

    def forget_throttles(self) -> int:
        """Delete every throttle history (the ``throttle_window_<scope>_<ident>`` cache keys)."""
        import redis

        client = redis.Redis.from_url(self.args.redis_url)
        keys = list(client.scan_iter(match=f"{CACHE_KEY_PREFIX}:*:throttle_*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
        return len(keys)

    def ensure_database(self) -> None:
        import psycopg

        parts = urllib.parse.urlsplit(self.args.database_url)
        name = parts.path.lstrip("/")
        if name in ("imagesync_bench", "imagesync"):
            raise SystemExit(f"refusing to use database {name}: it belongs to someone else")
        admin = urllib.parse.urlunsplit(parts._replace(path="/postgres"))
        with psycopg.connect(admin, autocommit=True) as connection:
            if not connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                connection.execute(f'CREATE DATABASE "{name}"')

    # -- setup --------------------------------------------------------------------------

    def setup(self) -> None:
        (self.workdir / "data").mkdir(parents=True, exist_ok=True)
        env = self.env()
        os.environ.update(env)
        self.ensure_database()
        done = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--no-input"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"migrate failed:\n{done.stdout}\n{done.stderr}")
        import django

        django.setup()
        self.redis_flush()
        self.seed()

    def seed(self) -> None:
        from django.db import connection, transaction

        from accounts.models import ApiToken, User
        from accounts.tokens import token_create
        from jobs.models import SyncJob, TargetNamespace

        started = time.monotonic()
        rng = random.Random(5)
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE jobs_jobtransition, jobs_syncjob RESTART IDENTITY CASCADE")
        users = []
        for i in range(self.args.users):
            user, _ = User.objects.get_or_create(email=USER_EMAIL.format(i))
            users.append(user)
        staff, _ = User.objects.get_or_create(email=STAFF_EMAIL, defaults={"is_staff": True})
        if not staff.is_staff:
            staff.is_staff = True
            staff.save(update_fields=["is_staff"])
        namespaces = []
        for name in NAMESPACES:
            ns, _ = TargetNamespace.objects.get_or_create(registry=REGISTRY, namespace=name)
            ns.repository_quota = 1_000_000  # the default (300) would refuse new repositories
            ns.is_active = True
            ns.save()
            ns.members.set(users)
            namespaces.append(ns)
        # Fresh tokens every run (the old ones are deleted: they were shown once and are lost).
        ApiToken.objects.filter(user__email__startswith="apibench-").delete()
        self.tokens = [token_create(user=users[i], name="apibench")[1] for i in range(self.args.clients)]
        self.staff_tokens = [
            token_create(user=staff, name=f"apibench-{i}")[1] for i in range(self.args.clients)
        ]

        statuses = [s for s, _w in STATUS_MIX]
        weights = [w for _s, w in STATUS_MIX]
        n = self.args.jobs
        batch: list[SyncJob] = []
        with transaction.atomic():
            for i in range(n):
                ns = namespaces[i % len(namespaces)]
                owner = users[rng.randrange(len(users))]
                status = rng.choices(statuses, weights)[0]
                active = status in SyncJob.ACTIVE_STATUSES
                kind = "sync" if (not active and rng.random() < 0.15) else "copy"
                img = f"img{rng.randrange(REPOS_PER_NAMESPACE)}"
                repository = f"{ns.registry}/{ns.namespace}/{img}"
                if kind == "copy":
                    tag = f"v{i}"
                    source = f"docker.io/library/{img}:{tag}"
                    destination = f"{repository}:{tag}"
                else:
                    source = f"docker.io/library/{img}"
                    destination = repository
                finished = status in SyncJob.FINISHED_STATUSES
                batch.append(
                    SyncJob(
                        owner=owner,
                        namespace=ns,
                        kind=kind,
                        source=source,
                        destination=destination,
                        destination_repository=repository,
                        status=status,
                        conclusion={
                            "succeeded": "success",
                            "failed": "failure",
                            "cancelled": "cancelled",
                        }.get(status, ""),
                        github_run_id=(10_000_000 + i) if status not in ("pending", "error") else None,
                        github_run_url=(
                            f"https://github.com/acme/imagesync/actions/runs/{10_000_000 + i}"
                            if status not in ("pending", "error")
                            else ""
                        ),
                        error_message="dispatch refused: workflow not found" if status == "error" else "",
                        failed_step="Copy image" if status == "failed" else "",
                        report_collected=finished,
                        result={"copied": [{"tag": "v1", "digest": "sha256:" + "0" * 64}]}
                        if status == "succeeded"
                        else {},
                    )
                )
                if len(batch) == 5000:
                    SyncJob.objects.bulk_create(batch)
                    batch = []
            if batch:
                SyncJob.objects.bulk_create(batch)
        # auto_now_add/auto_now overwrite created_at/updated_at in bulk_create: spread them
        # afterwards over ~6 months, older ids older, with jitter.
        days = self.args.spread_days
        with connection.cursor() as cursor:
            cursor.execute(
                """
                UPDATE jobs_syncjob SET
                  created_at = now() - make_interval(secs => ((%s - id) * %s + random() * 60)),
                  dispatched_at = NULL, started_at = NULL, finished_at = NULL
                """,
                [n, days * 86400.0 / n],
            )
            cursor.execute(
                """
                UPDATE jobs_syncjob SET
                  updated_at = created_at + interval '3 minutes',
                  dispatched_at = CASE WHEN status NOT IN ('pending', 'error') THEN created_at + interval '2 seconds' END,
                  started_at = CASE WHEN status IN ('running', 'succeeded', 'failed', 'cancelled') THEN created_at + interval '20 seconds' END,
                  finished_at = CASE WHEN status IN ('succeeded', 'failed', 'cancelled', 'error') THEN created_at + interval '3 minutes' END
                """
            )
        # As autovacuum would have by now on a running site (PostgreSQL 13+ vacuums a table after
        # many inserts): VACUUM sets the visibility map, so index-only scans (the counts) skip
        # the heap. A bulk-loaded, never-vacuumed table would send every count to the heap.
        # VACUUM cannot run in a transaction block: Django's autocommit, outside any atomic().
        assert not connection.in_atomic_block
        vacuum_started = time.monotonic()
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE jobs_syncjob")
        vacuum_seconds = round(time.monotonic() - vacuum_started, 1)
        with connection.cursor() as cursor:
            cursor.execute("SELECT status, count(*) FROM jobs_syncjob GROUP BY status ORDER BY 2 DESC")
            mix = dict(cursor.fetchall())
            cursor.execute("SELECT kind, count(*) FROM jobs_syncjob GROUP BY kind")
            kinds = dict(cursor.fetchall())
            cursor.execute(
                "SELECT min(created_at), max(created_at), pg_size_pretty(pg_total_relation_size('jobs_syncjob')) FROM jobs_syncjob"
            )
            oldest, newest, size = cursor.fetchone()
            cursor.execute("SELECT count(*) FROM jobs_syncjob WHERE owner_id = %s", [users[0].pk])
            per_user = cursor.fetchone()[0]
        self.users = users
        self.results["seed"] = {
            "jobs": n,
            "users": len(users),
            "namespaces": len(namespaces),
            "statuses": mix,
            "kinds": kinds,
            "oldest": oldest.isoformat(),
            "newest": newest.isoformat(),
            "table_size": size,
            "jobs_of_client_0": per_user,
            "vacuum_analyze_seconds": vacuum_seconds,
            "seconds": round(time.monotonic() - started, 1),
        }
        log(
            f"seeded {n} jobs in {self.results['seed']['seconds']} s (VACUUM ANALYZE {vacuum_seconds} s): "
            f"{mix}, {kinds}, table {size}"
        )

    # -- server -------------------------------------------------------------------------

    def start_server(self, limits: dict[str, str]) -> None:
        """gunicorn with the production settings, plus ``limits`` (API_RATE, ...) if any."""
        env = {**self.env(), **limits}
        self.port = free_port()
        self.gunicorn_log = self.workdir / f"gunicorn-{self.port}.log"
        gunicorn = str(Path(sys.executable).parent / "gunicorn")
        self.gunicorn = subprocess.Popen(
            [
                gunicorn,
                "imagesync_site.wsgi",
                "--workers",
                str(self.args.workers),
                "--worker-class",
                "sync",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.gunicorn_log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

        def answers() -> bool:
            if self.gunicorn.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{self.gunicorn_log.read_text()[-3000:]}")
            try:
                import requests

                return requests.get(f"{self.base}/api/v1/me/", timeout=2).status_code in (401, 403)
            except Exception:  # noqa: BLE001 - not up yet
                return False

        wait_for(answers, 60, "gunicorn")
        described = ", ".join(f"{k}={v}" for k, v in limits.items()) or "default API limits"
        log(f"gunicorn up on 127.0.0.1:{self.port}, {self.args.workers} sync workers, {described}")

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop_server(self) -> None:
        if self.gunicorn is None or self.gunicorn.poll() is not None:
            return
        try:
            os.killpg(self.gunicorn.pid, signal.SIGTERM)
            self.gunicorn.wait(timeout=20)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.gunicorn.pid, signal.SIGKILL)
            self.gunicorn.wait(timeout=10)
        self.gunicorn = None

    # -- load ---------------------------------------------------------------------------

    def run_phase(
        self,
        name: str,
        tokens: list[str],
        per_client: int,
        make_request: Callable[[int, int], tuple[str, str, dict[str, Any] | None]],
        expect: tuple[int, ...],
    ) -> dict[str, Any]:
        import requests

        latencies: list[list[float]] = [[] for _ in tokens]
        errors: list[list[str]] = [[] for _ in tokens]
        barrier = threading.Barrier(len(tokens) + 1)
        cut_short: list[int] = []

        def client(index: int) -> None:
            session = requests.Session()
            session.headers["Authorization"] = f"Bearer {tokens[index]}"
            barrier.wait()
            for k in range(per_client):
                if time.monotonic() > self.deadline:  # --max-seconds: report what was measured
                    cut_short.append(index)
                    break
                method, path, body = make_request(index, k)
                t0 = time.perf_counter()
                try:
                    response = session.request(method, self.base + path, json=body, timeout=30)
                    response.content  # noqa: B018 - read the whole body inside the timing
                    elapsed = time.perf_counter() - t0
                    if response.status_code not in expect:
                        errors[index].append(f"{response.status_code} {response.text[:200]}")
                        continue
                except requests.RequestException as exc:
                    errors[index].append(repr(exc))
                    continue
                latencies[index].append(elapsed * 1000)
            session.close()

        threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(len(tokens))]
        for thread in threads:
            thread.start()
        barrier.wait()
        t0 = time.perf_counter()
        for thread in threads:
            # Past the deadline a client stops after its request in flight (30 s at most).
            thread.join(timeout=max(1.0, self.deadline - time.monotonic()) + 35)
        wall = time.perf_counter() - t0
        all_ms = sorted(x for per in latencies for x in per)
        errs = [e for per in errors for e in per]
        result = {
            "phase": name,
            "clients": len(tokens),
            **latency_summary(all_ms, errs, wall),
            "cut_short": bool(cut_short),
        }
        if cut_short:
            log(f"{name}: --max-seconds reached during the phase; the figures cover what was sent before")
        log(
            f"{name}: {result['requests']} ok, {result['errors']} errors, p50 {result['p50_ms']} "
            f"p95 {result['p95_ms']} p99 {result['p99_ms']} max {result['max_ms']} ms, "
            f"{result['throughput_rps']} req/s"
        )
        if errs:
            log(f"  first errors: {errs[:3]}")
        if any(thread.is_alive() for thread in threads):
            raise TimeoutError(f"phase {name}: clients still running 35 s after --max-seconds")
        return result


def _load() -> tuple[float, int, int]:
    with open("/proc/stat") as handle:
        values = [int(v) for v in handle.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return os.getloadavg()[0], sum(values[:8]) - idle, sum(values[:8])


def _busy(a: tuple[float, int, int], b: tuple[float, int, int]) -> float:
    return (b[1] - a[1]) / (b[2] - a[2]) if b[2] > a[2] else 0.0


def namespace_of(client: int) -> str:
    return f"{REGISTRY}/{NAMESPACES[client % len(NAMESPACES)]}"


def measure(bench: Bench) -> None:
    """The closed-loop part: each client sends its next request when the previous answer is in."""
    args = bench.args
    run_tag = bench.run_tag
    clients = args.clients
    per_client_create = max(1, args.creates // clients)
    per_client_list = max(1, args.lists // clients)
    rng = random.Random(7)
    serial = bench.serial  # every create a distinct source across phases: none deduplicated
    ns_for = [namespace_of(i) for i in range(clients)]

    def create_existing_repo(i: int, k: int) -> tuple[str, str, dict[str, Any]]:
        # A new tag of a repository the namespace already holds: the common case.
        img = rng.randrange(REPOS_PER_NAMESPACE)
        return (
            "POST",
            "/api/v1/jobs/",
            {
                "source": f"library/img{img}:{run_tag}-{i}-{next(serial)}",
                "kind": "copy",
                "namespace": ns_for[i],
            },
        )

    def create_new_repo(i: int, k: int) -> tuple[str, str, dict[str, Any]]:
        # A repository the namespace does not hold yet: the quota check counts its repositories.
        return (
            "POST",
            "/api/v1/jobs/",
            {
                "source": f"library/new-{run_tag}-{i}-{next(serial)}:1",
                "kind": "copy",
                "namespace": ns_for[i],
            },
        )

    def get(path: str) -> Callable[[int, int], tuple[str, str, None]]:
        return lambda i, k: ("GET", path, None)

    one, staff_one = bench.tokens[:1], bench.staff_tokens[:1]
    phases: list[tuple[str, list[str], int, Callable[..., Any], tuple[int, ...]]] = [
        # One client, one request at a time: the service time, without queueing.
        ("1 client: create (existing repo)", one, 200, create_existing_repo, (201,)),
        ("1 client: create (new repo)", one, 50, create_new_repo, (201,)),
        ("1 client: list, first page", one, 200, get("/api/v1/jobs/"), (200,)),
        ("1 client: list ?search=img12", one, 100, get("/api/v1/jobs/?search=img12"), (200,)),
        ("1 client: staff ?all=true", staff_one, 100, get("/api/v1/jobs/?all=true"), (200,)),
        (
            "1 client: staff ?all&search=img12",
            staff_one,
            30,
            get("/api/v1/jobs/?all=true&search=img12"),
            (200,),
        ),
        # The benchmark proper: 20 concurrent clients, each its own user and token.
        ("create (existing repository)", bench.tokens, per_client_create, create_existing_repo, (201,)),
        ("create (new repository)", bench.tokens, max(1, per_client_create // 5), create_new_repo, (201,)),
        ("list, first page", bench.tokens, per_client_list, get("/api/v1/jobs/"), (200,)),
        ("list ?search=img12", bench.tokens, per_client_list // 2, get("/api/v1/jobs/?search=img12"), (200,)),
        (
            "list ?status=failed",
            bench.tokens,
            per_client_list // 2,
            get("/api/v1/jobs/?status=failed"),
            (200,),
        ),
        (
            "list ?status=active",
            bench.tokens,
            per_client_list // 4,
            get("/api/v1/jobs/?status=active"),
            (200,),
        ),
        (
            "staff list ?all=true",
            bench.staff_tokens,
            per_client_list // 2,
            get("/api/v1/jobs/?all=true"),
            (200,),
        ),
        (
            "staff ?all=true&status=failed",
            bench.staff_tokens,
            per_client_list // 4,
            get("/api/v1/jobs/?all=true&status=failed"),
            (200,),
        ),
        (
            "staff ?all=true&search=img12",
            bench.staff_tokens,
            per_client_list // 10,
            get("/api/v1/jobs/?all=true&search=img12"),
            (200,),
        ),
    ]

    # Warm-up: every worker imports, connects and fills its caches; not measured.
    bench.run_phase(
        "warm-up",
        bench.tokens,
        5,
        lambda i, k: (
            ("GET", "/api/v1/jobs/", None)
            if k % 2
            else (
                "POST",
                "/api/v1/jobs/",
                {"source": f"library/warm-{run_tag}-{i}-{k}:1", "kind": "copy", "namespace": ns_for[i]},
            )
        ),
        (200, 201),
    )
    bench.run_phase("warm-up staff", bench.staff_tokens, 2, get("/api/v1/jobs/?all=true"), (200,))

    start = _load()
    results = []
    for name, tokens, per_client, make, expect in phases:
        if time.monotonic() > bench.deadline:
            log(f"--max-seconds reached: skipping {name}")
            continue
        before, own_before, t0 = _load(), time.process_time(), time.perf_counter()
        result = bench.run_phase(name, tokens, max(1, per_client), make, expect)
        result["cpu_busy"] = round(_busy(before, _load()), 2)
        # CPU this bench process (the clients) used, in cores: it shares the machine with gunicorn.
        result["client_cpu_cores"] = round((time.process_time() - own_before) / (time.perf_counter() - t0), 2)
        results.append(result)
    end = _load()
    bench.results["phases"] = results
    bench.results["load"] = {
        "start": round(start[0], 2),
        "end": round(end[0], 2),
        "cpu_busy": round(_busy(start, end), 2),
    }


def warm_up_paced(bench: Bench) -> None:
    """Warm the new workers (a create's first Celery publish opens the broker connection, ...),
    then forget the throttle histories so that every client starts the paced phase with its
    whole budget. Well under the limits itself: 2 lists and 2 creates per client."""

    def request(i: int, k: int) -> tuple[str, str, dict[str, Any] | None]:
        if k % 2:
            return ("GET", PACED_LISTS[(k // 2) % len(PACED_LISTS)], None)
        source = f"library/img{k}:{bench.run_tag}-w{i}-{next(bench.serial)}"
        return ("POST", "/api/v1/jobs/", {"source": source, "kind": "copy", "namespace": namespace_of(i)})

    bench.run_phase("warm-up (default limits)", bench.tokens, 4, request, (200, 201))
    bench.run_phase(
        "warm-up staff (default limits)",
        bench.staff_tokens,
        2,
        lambda i, k: ("GET", "/api/v1/jobs/?all=true", None),
        (200,),
    )
    log(f"forgot {bench.forget_throttles()} throttle histories of the warm-up")


def measure_paced(bench: Bench) -> None:
    """The paced part: open loop, each client on its own fixed schedule, under the default limits.

    Client i sends request k at t0 + offset_i + k * PACED_INTERVAL, whatever the answers take
    (offset_i random in [0, PACED_INTERVAL)). A client that falls behind sends at once; its
    latency is counted from the actual send, and how late the send was is recorded, so the
    report shows whether the clients kept their schedule. Each client is its own user and token:
    the limits are per token (requests) and per user (creations).
    """
    import requests

    args = bench.args
    duration = args.paced_seconds
    tokens = bench.tokens
    rng = random.Random(11)
    offsets = [rng.uniform(0, PACED_INTERVAL) for _ in tokens]
    # (kind, latency ms or None, lateness s, error or None, status or None, sent at s) per request
    records: list[list[tuple[str, float | None, float, str | None, int | None, float]]] = [[] for _ in tokens]
    start_at = time.perf_counter() + 1.0  # all threads started and waiting by then

    def client(index: int) -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {tokens[index]}"
        own = random.Random(1000 + index)
        namespace = namespace_of(index)
        # Which request of each 6 is this client's create: spread over the clients, so that the
        # 20 creates of a round are not all sent in the same 1.05 s.
        create_slot = (PACED_CREATE_EVERY - 1 - index) % PACED_CREATE_EVERY
        lists_sent = 0
        k = 0
        while True:
            scheduled = start_at + offsets[index] + k * PACED_INTERVAL
            if scheduled >= start_at + duration:
                break
            delay = scheduled - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            if k % PACED_CREATE_EVERY == create_slot:
                kind, method, path, expect = "create", "POST", "/api/v1/jobs/", 201
                # A new tag of a repository the namespace already holds, a source never used before.
                img = own.randrange(REPOS_PER_NAMESPACE)
                source = f"library/img{img}:{bench.run_tag}-p{index}-{next(bench.serial)}"
                body: dict[str, Any] | None = {"source": source, "kind": "copy", "namespace": namespace}
            else:
                kind, method, expect, body = "list", "GET", 200, None
                path = PACED_LISTS[lists_sent % len(PACED_LISTS)]
                lists_sent += 1
            k += 1
            sent = time.perf_counter()
            late = max(0.0, sent - scheduled)
            at = sent - start_at
            try:
                response = session.request(method, bench.base + path, json=body, timeout=30)
                response.content  # noqa: B018 - read the whole body inside the timing
                elapsed_ms = (time.perf_counter() - sent) * 1000
            except requests.RequestException as exc:
                records[index].append((kind, None, late, repr(exc), None, at))
                continue
            if response.status_code != expect:
                error = f"{kind} {path}: {response.status_code} {response.text[:200]}"
                records[index].append((kind, None, late, error, response.status_code, at))
            else:
                records[index].append((kind, elapsed_ms, late, None, response.status_code, at))
        session.close()

    log(
        f"paced: {len(tokens)} clients for {duration:.0f} s, a request every {PACED_INTERVAL} s each, "
        f"every {PACED_CREATE_EVERY}th a create"
    )
    before, own_before, t0 = _load(), time.process_time(), time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(len(tokens))]
    for thread in threads:
        thread.start()
    for thread in threads:
        # The last request is scheduled before start_at + duration and times out after 30 s.
        thread.join(timeout=max(1.0, start_at + duration + 40 - time.perf_counter()))
    if any(thread.is_alive() for thread in threads):
        raise TimeoutError("the paced phase's clients did not finish")
    wall = time.perf_counter() - max(t0, start_at)
    busy = round(_busy(before, _load()), 2)
    client_cores = round((time.process_time() - own_before) / (time.perf_counter() - t0), 2)

    flat = [r for per in records for r in per]
    phases = []
    for kind, name, expected in (
        ("create", "paced: create (existing repository)", 201),
        ("list", "paced: list (4 kinds, cycled)", 200),
    ):
        mine = [r for r in flat if r[0] == kind]
        all_ms = sorted(r[1] for r in mine if r[1] is not None)
        errs = [r[3] for r in mine if r[3] is not None]
        late_ms = sorted(r[2] * 1000 for r in mine)
        result = {
            "phase": name,
            "clients": len(tokens),
            "expected_status": expected,
            "sent": len(mine),
            **latency_summary(all_ms, errs, wall),
            "throttled_429": sum(1 for r in mine if r[4] == 429),
            "late_p99_ms": round(percentile(late_ms, 99), 1),
            "late_max_ms": round(late_ms[-1], 1) if late_ms else None,
            "cpu_busy": busy,
            "client_cpu_cores": client_cores,
        }
        phases.append(result)
        log(
            f"{name}: {result['requests']} ok, {result['errors']} errors ({result['throttled_429']} "
            f"of them 429), p50 {result['p50_ms']} p95 {result['p95_ms']} p99 {result['p99_ms']} "
            f"max {result['max_ms']} ms, {result['throughput_rps']} req/s; sends late by at most "
            f"{result['late_max_ms']} ms (p99 {result['late_p99_ms']} ms)"
        )
        if errs:
            log(f"  first errors: {errs[:3]}")
    throttled = sum(p["throttled_429"] for p in phases)
    per_client = [len(per) for per in records]
    bench.results["paced"] = {
        "seconds": duration,
        "interval_s": PACED_INTERVAL,
        "create_every": PACED_CREATE_EVERY,
        "lists": PACED_LISTS,
        "limits": "defaults (API_RATE and API_JOB_CREATE_RATE unset: 60/minute, 10/minute)",
        "requests_per_client": {"min": min(per_client), "max": max(per_client)},
        "throttled_429": throttled,
        "late_max_ms": max((p["late_max_ms"] or 0.0) for p in phases),
        "phases": phases,
        # Every request: client, kind, sent at (s after the start), latency ms (None: error),
        # how late the send was (ms), HTTP status (None: no answer).
        "samples": [
            [i, r[0], round(r[5], 3), None if r[1] is None else round(r[1], 1), round(r[2] * 1000, 1), r[4]]
            for i, per in enumerate(records)
            for r in per
        ],
    }
    if throttled:
        log(f"!!! {throttled} paced requests were refused with 429: the schedule broke a limit !!!")


def machine() -> dict[str, Any]:
    import psycopg

    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
    }
    try:
        info["git"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "jobs", "accounts", "imagesync_site"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        info["dirty"] = bool(dirty)
    except OSError:
        pass
    with psycopg.connect(DEFAULT_DATABASE_URL.rsplit("/", 1)[0] + "/postgres") as conn:
        info["postgres"] = conn.execute("SHOW server_version").fetchone()[0]
    return info


def other_bench_pids() -> list[str]:
    out = subprocess.run(
        ["pgrep", "-f", r"python[^ ]* bench/run\.py"], capture_output=True, text=True, check=False
    ).stdout
    return [pid for pid in out.split() if int(pid) != os.getpid()]


class Watcher(threading.Thread):
    """Notes any bench/run.py that starts while this benchmark runs."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.seen: list[str] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(2.0):
            for pid in other_bench_pids():
                if pid not in self.seen:
                    self.seen.append(pid)

    def stop(self) -> None:
        self._stop_event.set()


def print_table(results: dict[str, Any]) -> None:
    print()
    print(
        f"{'phase':36} {'c':>2} {'n':>5} {'err':>4} {'p50':>7} {'p95':>7} {'p99':>7} {'max':>7} {'req/s':>7} {'target':>14} {'busy':>4} {'cli':>4}"
    )
    paced = results.get("paced", {})
    for r in results.get("phases", []) + paced.get("phases", []):
        target = ""
        if "create" in r["phase"]:
            target = f"p95<={TARGET_CREATE_P95_MS:.0f} " + (
                "ok" if r["p95_ms"] <= TARGET_CREATE_P95_MS else "MISSED"
            )
        else:
            target = f"p95<={TARGET_LIST_P95_MS:.0f} " + (
                "ok" if r["p95_ms"] <= TARGET_LIST_P95_MS else "MISSED"
            )
        print(
            f"{r['phase']:36} {r['clients']:>2} {r['requests']:>5} {r['errors']:>4} {r['p50_ms']:>7} {r['p95_ms']:>7} "
            f"{r['p99_ms']:>7} {r['max_ms']!s:>7} {r['throughput_rps']:>7} {target:>14} {r['cpu_busy']:>4} {r['client_cpu_cores']:>4}"
        )
    print(
        "(milliseconds, client-side, per request; c = concurrent clients; busy = whole machine's CPU"
        " share; cli = cores used by the bench's own client threads)"
    )
    if paced:
        print(
            f"paced: {paced['seconds']:.0f} s at the default limits, a request every {paced['interval_s']} s"
            f" per client ({paced['requests_per_client']['min']}-{paced['requests_per_client']['max']}"
            f" each), every {paced['create_every']}th a create; sends late by at most"
            f" {paced['late_max_ms']} ms; 429 answers: {paced['throttled_429']}"
        )
        if paced["throttled_429"]:
            print(f"!!! {paced['throttled_429']} PACED REQUESTS WERE THROTTLED (429): see error_samples !!!")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers")
    parser.add_argument("--creates", type=int, default=2000)
    parser.add_argument("--lists", type=int, default=2000)
    parser.add_argument("--spread-days", type=float, default=180.0)
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=300.0,
        help="budget of the closed-loop phases, counted once seeding is done: a phase running then "
        "stops and reports what it measured (cut_short), later ones are skipped",
    )
    parser.add_argument(
        "--paced-seconds",
        type=float,
        default=90.0,
        help="length of the paced phase at the default API limits, after the closed-loop ones (0: skip it)",
    )
    parser.add_argument(
        "--paced-only", action="store_true", help="seed, then run only the paced phase (no closed loop)"
    )
    parser.add_argument("--json", type=Path)
    parser.add_argument("--wait-seconds", type=float, default=900.0, help="wait this long for bench/run.py")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (gunicorn log)")
    args = parser.parse_args()
    if args.clients > args.users:
        parser.error("--clients must not exceed --users (each client is its own user)")
    if args.paced_seconds < 0 or (args.paced_only and args.paced_seconds == 0):
        parser.error("--paced-seconds must be positive (or 0 to skip the paced phase, without --paced-only)")
    if "/11" in args.redis_url.rsplit(":", 1)[-1]:
        parser.error("Redis DB 11 belongs to bench/run.py")
    # bench/run.py (the engine benchmark) shares these 2 cores: wait for it, and watch for it.
    deadline = time.monotonic() + args.wait_seconds
    while other_bench_pids():
        if time.monotonic() > deadline:
            log("bench/run.py is still running: not measuring (--wait-seconds)")
            return 2
        log(f"waiting for bench/run.py (pids {' '.join(other_bench_pids())}) to finish")
        time.sleep(10)
    watcher = Watcher()
    watcher.start()

    bench = Bench(args)
    started = time.monotonic()

    def on_signal(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    # The last resort: the closed-loop budget, the paced phase with its server's start, a margin.
    paced_budget = args.paced_seconds + 120 if args.paced_seconds else 0
    timer = threading.Timer(
        args.max_seconds + paced_budget + 120, lambda: os.kill(os.getpid(), signal.SIGTERM)
    )
    timer.daemon = True
    try:
        bench.results["machine"] = machine()
        bench.results["machine"]["load_before"] = round(os.getloadavg()[0], 2)
        bench.setup()
        # The budgets count from here: seeding took 50-210 s on the same machine in one hour.
        timer.start()
        bench.deadline = time.monotonic() + args.max_seconds
        if not args.paced_only:
            bench.start_server(RAISED_LIMITS)
            measure(bench)
            bench.stop_server()
        if args.paced_seconds:
            # Forget the closed loop's throttle histories (and its dispatch messages), then serve
            # with the product's own limits.
            bench.redis_flush()
            bench.start_server({})
            bench.deadline = time.monotonic() + args.paced_seconds + 120
            warm_up_paced(bench)
            measure_paced(bench)
    finally:
        timer.cancel()
        bench.stop_server()
        try:
            bench.redis_flush()  # the dispatch messages of the pending jobs: no worker will take them
        except Exception as exc:  # noqa: BLE001
            log(f"could not flush {args.redis_url}: {exc}")
        if args.keep:
            log(f"work directory kept: {bench.workdir}")
        else:
            shutil.rmtree(bench.workdir, ignore_errors=True)
    watcher.stop()
    bench.results["disturbed_by_bench_run"] = watcher.seen
    if watcher.seen:
        log(f"WARNING: bench/run.py ran during this measurement (pids {watcher.seen}): figures disturbed")
    bench.results["seconds"] = round(time.monotonic() - started, 1)
    bench.results["args"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    print_table(bench.results)
    log(f"whole run {bench.results['seconds']} s; load {bench.results.get('load')}")
    if args.json:
        args.json.write_text(json.dumps(bench.results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
