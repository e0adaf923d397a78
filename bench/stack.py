"""The portal on loopback for the benchmarks: its own PostgreSQL database and Redis DB, gunicorn
(which receives the webhooks), a Celery worker and Celery beat as subprocesses, and the GitHub
emulator in this process.

Each scenario gets a fresh emulated repository (``Stack.fresh_github``): a new emulator, and a
worker and beat restarted to point at it, so the runs of one scenario never show up in the run
lists of the next one (the poller looks five minutes back). Every process started here is stopped
by ``Stack.close``, which ``run.py`` calls in a ``finally`` (Ctrl-C and SIGTERM included).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from emulator.core import GitHubEmulator  # noqa: E402

REPOSITORY = "acme/imagesync"
TOKEN = "bench-github-token"
WEBHOOK_SECRET = "bench-webhook-secret"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/imagesync_bench"
# DB 13 was suggested, but test runs on this machine were seen using it (their purges of the
# shared "celery" queue swallowed the bench's tasks): the bench takes 11 and checks it is alone.
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/11"
NAMESPACE_REGISTRY = "registry.cn-hangzhou.aliyuncs.com"
NAMESPACE_NAME = "bench"
OWNER_EMAIL = "bench@example.com"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def load_snapshot() -> tuple[float, int, int]:
    """(1-minute load average, busy jiffies, total jiffies) of the whole machine."""
    with open("/proc/stat") as handle:
        values = [int(v) for v in handle.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])
    return os.getloadavg()[0], total - idle, total


def cpu_busy(start: tuple[float, int, int], end: tuple[float, int, int]) -> float:
    """Share of both cores busy between two snapshots (0..1), whoever used them."""
    total = end[2] - start[2]
    return (end[1] - start[1]) / total if total else 0.0


@dataclass
class Child:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM to the child's own process group (it was started in a new session), then
        SIGKILL if it is still there after ``timeout``."""
        if self.popen.poll() is not None:
            return
        try:
            os.killpg(self.popen.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.popen.wait(timeout=10)


class Instrument:
    """Timestamps the emulator does not keep at sub-second precision, taken in this process:
    when a dispatch reached the emulator (by the request id in its inputs) and when a run was
    marked completed (by run id). It wraps two methods of the emulator instance; the emulator's
    code is unchanged."""

    def __init__(self, emulator: GitHubEmulator) -> None:
        self.dispatched: dict[str, float] = {}
        self.completed: dict[int, float] = {}
        self._lock = threading.Lock()
        original_dispatch = emulator.dispatch_request
        original_emit = emulator.emit_workflow_run

        def dispatch_request(workflow_id: Any, body: Any) -> Any:
            received = time.time()
            run = original_dispatch(workflow_id, body)
            inputs = body.get("inputs") if isinstance(body, dict) else None
            request_id = inputs.get("request_id") if isinstance(inputs, dict) else None
            if request_id:
                with self._lock:
                    self.dispatched.setdefault(str(request_id), received)
            return run

        def emit_workflow_run(run: Any, action: str) -> Any:
            if action == "completed":
                with self._lock:
                    self.completed.setdefault(run.id, time.time())
            return original_emit(run, action)

        emulator.dispatch_request = dispatch_request  # type: ignore[method-assign]
        emulator.emit_workflow_run = emit_workflow_run  # type: ignore[method-assign]


@dataclass
class Stack:
    workdir: Path
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str = DEFAULT_REDIS_URL
    poll_interval: int = 5
    worker_concurrency: int = 4
    gunicorn_workers: int = 2
    gunicorn_port: int = field(default_factory=free_port)
    emulator: GitHubEmulator | None = None
    instrument: Instrument | None = None
    webhooks: bool = False
    children: list[Child] = field(default_factory=list)
    worker: Child | None = None
    beat: Child | None = None
    owner: Any = None
    namespace: Any = None
    _generation: int = 0

    # -- environment -----------------------------------------------------------------------

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.gunicorn_port}/github/webhook"

    def env(self, github_url: str) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("GITHUB_", "IMAGESYNC_", "CELERY_")) and k not in ("DATABASE_URL", "REDIS_URL")
        }
        env.update(
            DJANGO_SETTINGS_MODULE="imagesync_site.settings",
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis_url,
            CACHE_KEY_PREFIX="imagesync-bench",
            IMAGESYNC_DATA_DIR=str(self.workdir / "data"),
            DEBUG="false",
            SECRET_KEY="bench-secret-key-not-for-production-0123456789abcdef",
            SECURE_SSL_REDIRECT="false",
            LOG_LEVEL="WARNING",
            GITHUB_API_URL=github_url,
            GITHUB_TOKEN=TOKEN,
            GITHUB_REPOSITORY=REPOSITORY,
            GITHUB_WEBHOOK_SECRET=WEBHOOK_SECRET,
            IMAGESYNC_POLL_INTERVAL=str(self.poll_interval),
            PYTHONUNBUFFERED="1",
        )
        return env

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        (self.workdir / "data").mkdir(parents=True, exist_ok=True)
        # The bench process itself never calls GitHub: the worker does, once fresh_github() ran.
        env = self.env("http://127.0.0.1:9")
        os.environ.update(env)
        self._ensure_database()
        done = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--no-input"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
        )
        if done.returncode != 0:
            raise RuntimeError(f"migrate failed:\n{done.stdout}\n{done.stderr}")

        import django

        django.setup()
        self._reset_state()
        self.gunicorn = self._spawn(
            "gunicorn",
            [str(Path(sys.executable).parent / "gunicorn"), "imagesync_site.wsgi",
             "--bind", f"127.0.0.1:{self.gunicorn_port}", "--workers", str(self.gunicorn_workers),
             "--log-level", "warning"],
            env,
        )
        wait_for(self._gunicorn_answers, 60, "gunicorn")

    def _gunicorn_answers(self) -> bool:
        if not self.gunicorn.alive:
            raise RuntimeError(f"gunicorn exited:\n{self.gunicorn.text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", self.gunicorn_port), timeout=1) as sock:
                sock.sendall(b"GET /github/webhook HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
                return sock.recv(16).startswith(b"HTTP/")
        except OSError:
            return False

    def _ensure_database(self) -> None:
        import psycopg

        parts = urllib.parse.urlsplit(self.database_url)
        name = parts.path.lstrip("/")
        admin = urllib.parse.urlunsplit(parts._replace(path="/postgres"))
        with psycopg.connect(admin, autocommit=True) as connection:
            exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if not exists:
                connection.execute(f'CREATE DATABASE "{name}"')

    def _reset_state(self) -> None:
        """Empty the bench database's jobs and the bench's Redis keys; make the owner and the
        namespace the jobs are created in."""
        from django.core.cache import cache

        from accounts.models import User
        from jobs import tasks
        from jobs.models import SyncJob, TargetNamespace, WebhookDelivery

        SyncJob.objects.all().delete()
        WebhookDelivery.objects.all().delete()
        cache.delete_many(["imagesync:poll-lock", tasks.BACKOFF_KEY])
        self.purge_queue()
        owner, _ = User.objects.get_or_create(email=OWNER_EMAIL)
        namespace, _ = TargetNamespace.objects.get_or_create(
            registry=NAMESPACE_REGISTRY, namespace=NAMESPACE_NAME,
            defaults={"credential_secret": "DESTINATION_CREDENTIAL"},
        )
        namespace.repository_quota = 1_000_000
        namespace.is_active = True
        namespace.save()
        namespace.members.add(owner)
        self.owner, self.namespace = owner, namespace

    def redis_neighbours(self) -> list[str]:
        """Other clients connected to the bench's Redis DB (a test run using the same DB would
        consume or purge the bench's Celery tasks)."""
        import redis

        client = redis.Redis.from_url(self.redis_url)
        try:
            me = client.client_id()
            db = str(client.connection_pool.connection_kwargs.get("db", 0))
            return [
                f"{entry.get('addr')} (last command {entry.get('cmd')})"
                for entry in client.client_list()
                if str(entry.get("db")) == db and str(entry.get("id")) != str(me)
            ]
        finally:
            client.close()

    def foreign_tasks(self) -> int:
        """Dispatch tasks the workers received for job ids this database does not have: tasks
        published by someone else on the same Redis DB."""
        return sum(child.text().count("s: 'gone'") for child in self.children if child.name.startswith("worker"))

    def purge_queue(self) -> None:
        from imagesync_site.celery import app

        app.control.purge()

    def queue_length(self) -> int:
        from imagesync_site.celery import app

        with app.connection_for_write() as connection:
            return int(connection.default_channel.client.llen("celery"))

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> Child:
        log = self.workdir / f"{name}.log"
        with log.open("ab") as output:  # the child keeps its own copy of the descriptor
            popen = subprocess.Popen(
                argv, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )
        child = Child(name, popen, log)
        self.children.append(child)
        return child

    def _new_emulator(self, *, webhooks: bool) -> None:
        self.emulator = GitHubEmulator(
            repo_root=ROOT,
            repository=REPOSITORY,
            token=TOKEN,
            secrets={"DESTINATION_CREDENTIAL": "bench:not-used-by-dry-runs"},
            webhook_url=self.webhook_url if webhooks else None,
            webhook_secret=WEBHOOK_SECRET,
            control=True,
            # No shortage of runners: 200 runs may be in progress together.
            max_concurrent_runs=1000,
            dry="success",
            shutdown_grace=0.0,
            kill_grace=1.0,
        ).start()
        self.instrument = Instrument(self.emulator)
        self.webhooks = webhooks

    def fresh_github(self, *, webhooks: bool) -> GitHubEmulator:
        """A new emulated repository, with (webhook_url set) or without webhooks, and a worker and
        beat restarted against it."""
        self._stop_celery()
        if self.emulator is not None:
            self.emulator.close(grace=0)
        self._new_emulator(webhooks=webhooks)
        assert self.emulator is not None
        os.environ["GITHUB_API_URL"] = self.emulator.url
        from django.conf import settings

        settings.GITHUB_API_URL = self.emulator.url
        from django.core.cache import cache

        from jobs import tasks
        from jobs.models import WebhookDelivery

        cache.delete_many(["imagesync:poll-lock", tasks.BACKOFF_KEY])
        if not webhooks:
            # A portal that receives no webhooks has no recent deliveries (the poller may wait
            # longer while deliveries arrive).
            WebhookDelivery.objects.all().delete()
        self.purge_queue()
        env = self.env(self.emulator.url)
        self._generation += 1
        celery = [sys.executable, "-m", "celery", "-A", "imagesync_site"]
        self.worker = self._spawn(
            f"worker{self._generation}",
            [*celery, "worker", "--loglevel", "INFO", "--concurrency", str(self.worker_concurrency),
             "--without-gossip", "--without-mingle", "--without-heartbeat",
             "--hostname", f"bench-{os.getpid()}-{self._generation}@%h"],
            env,
        )
        self.beat = self._spawn(
            f"beat{self._generation}",
            [*celery, "beat", "--loglevel", "INFO",
             "--schedule", str(self.workdir / f"beat-schedule-{self._generation}")],
            env,
        )
        worker, beat = self.worker, self.beat
        wait_for(lambda: " ready." in worker.text() or not worker.alive, 90, "the Celery worker")
        wait_for(lambda: "beat: Starting" in beat.text() or not beat.alive, 90, "Celery beat")
        for child in (worker, beat):
            if not child.alive:
                raise RuntimeError(f"{child.name} exited:\n{child.text()[-3000:]}")
        return self.emulator

    def _stop_celery(self) -> None:
        for child in (self.beat, self.worker):
            if child is not None:
                child.stop()
        self.beat = self.worker = None

    def close(self) -> None:
        self._stop_celery()
        for child in reversed(self.children):
            child.stop()
        if self.emulator is not None:
            self.emulator.close(grace=0)
            self.emulator = None
        try:
            self.purge_queue()
        except Exception:  # noqa: BLE001 - best effort on the way out
            pass
