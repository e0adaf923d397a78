"""API benchmark (issue 5): job creation and the job list through /api/v1/, served by gunicorn,
with 100,000 jobs in PostgreSQL.

    .venv/bin/python bench/api.py                 # seed, serve, measure, clean up (~2-3 min)
    .venv/bin/python bench/api.py --json out.json # also keep the raw figures

Own database ``imagesync_apibench`` (dropped jobs and reseeded every run), Redis DB 10 (flushed
before and after), a temporary IMAGESYNC_DATA_DIR, DEBUG=false. gunicorn runs with
``bench.api_settings`` (production settings, API throttle rates raised, see that module). No
worker runs: the jobs created stay pending; their dispatch messages are enqueued to Redis DB 10
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
REGISTRY = "registry.cn-hangzhou.aliyuncs.com"
NAMESPACES = ["apibench-a", "apibench-b", "apibench-c", "apibench-d", "apibench-e"]
USER_EMAIL = "apibench-{}@example.com"
STAFF_EMAIL = "apibench-staff@example.com"
REPOS_PER_NAMESPACE = 400  # img0..img399: the repositories the seeded jobs wrote
TARGET_CREATE_P95_MS = 50.0
TARGET_LIST_P95_MS = 100.0

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

    # -- environment --------------------------------------------------------------------

    def env(self, settings_module: str) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("GITHUB_", "IMAGESYNC_", "CELERY_", "DJANGO_"))
            and k not in ("DATABASE_URL", "REDIS_URL")
        }
        env.update(
            DJANGO_SETTINGS_MODULE=settings_module,
            DATABASE_URL=self.args.database_url,
            REDIS_URL=self.args.redis_url,
            CACHE_KEY_PREFIX="imagesync-apibench",
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
        env = self.env("imagesync_site.settings")
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
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE jobs_syncjob")
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
            "seconds": round(time.monotonic() - started, 1),
        }
        log(f"seeded {n} jobs in {self.results['seed']['seconds']} s: {mix}, {kinds}, table {size}")

    # -- server -------------------------------------------------------------------------

    def start_server(self) -> None:
        env = self.env("bench.api_settings")
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
        log(f"gunicorn up on 127.0.0.1:{self.port}, {self.args.workers} sync workers")

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

        def client(index: int) -> None:
            session = requests.Session()
            session.headers["Authorization"] = f"Bearer {tokens[index]}"
            barrier.wait()
            for k in range(per_client):
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
            thread.join(timeout=max(1.0, self.deadline - time.monotonic()))
        wall = time.perf_counter() - t0
        all_ms = sorted(x for per in latencies for x in per)
        errs = [e for per in errors for e in per]
        result = {
            "phase": name,
            "clients": len(tokens),
            "requests": len(all_ms),
            "errors": len(errs),
            "error_samples": errs[:5],
            "wall_s": round(wall, 2),
            "throughput_rps": round(len(all_ms) / wall, 1) if wall else 0.0,
            "p50_ms": round(percentile(all_ms, 50), 1),
            "p95_ms": round(percentile(all_ms, 95), 1),
            "p99_ms": round(percentile(all_ms, 99), 1),
            "max_ms": round(all_ms[-1], 1) if all_ms else None,
        }
        log(
            f"{name}: {result['requests']} ok, {result['errors']} errors, p50 {result['p50_ms']} "
            f"p95 {result['p95_ms']} p99 {result['p99_ms']} max {result['max_ms']} ms, "
            f"{result['throughput_rps']} req/s"
        )
        if errs:
            log(f"  first errors: {errs[:3]}")
        if any(thread.is_alive() for thread in threads):
            raise TimeoutError(f"phase {name} did not finish before --max-seconds")
        return result


def _load() -> tuple[float, int, int]:
    with open("/proc/stat") as handle:
        values = [int(v) for v in handle.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return os.getloadavg()[0], sum(values[:8]) - idle, sum(values[:8])


def _busy(a: tuple[float, int, int], b: tuple[float, int, int]) -> float:
    return (b[1] - a[1]) / (b[2] - a[2]) if b[2] > a[2] else 0.0


def measure(bench: Bench) -> None:
    args = bench.args
    run_tag = f"r{int(time.time()) % 100000}"
    clients = args.clients
    per_client_create = max(1, args.creates // clients)
    per_client_list = max(1, args.lists // clients)
    rng = random.Random(7)
    serial = itertools.count()  # every create a distinct source across phases: none deduplicated
    ns_for = [f"{REGISTRY}/{NAMESPACES[i % len(NAMESPACES)]}" for i in range(clients)]

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
    for r in results.get("phases", []):
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
    parser.add_argument("--max-seconds", type=float, default=300.0)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--wait-seconds", type=float, default=900.0, help="wait this long for bench/run.py")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (gunicorn log)")
    args = parser.parse_args()
    if args.clients > args.users:
        parser.error("--clients must not exceed --users (each client is its own user)")
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
    bench.deadline = time.monotonic() + args.max_seconds  # type: ignore[attr-defined]
    started = time.monotonic()

    def on_signal(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    timer = threading.Timer(args.max_seconds + 60, lambda: os.kill(os.getpid(), signal.SIGTERM))
    timer.daemon = True
    timer.start()
    try:
        bench.results["machine"] = machine()
        bench.results["machine"]["load_before"] = round(os.getloadavg()[0], 2)
        bench.setup()
        bench.start_server()
        measure(bench)
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
    log(f"whole run {bench.results['seconds']} s; load {bench.results['load']}")
    if args.json:
        args.json.write_text(json.dumps(bench.results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
