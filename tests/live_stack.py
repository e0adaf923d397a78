"""The whole system on loopback, for end-to-end tests: portal, Celery, GitHub, registries.

- the portal: pytest-django's ``live_server`` (it receives the emulator's webhooks);
- a real Celery worker (and, when asked, Celery beat) as subprocesses, on the test database
  (PostgreSQL) and the test Redis as broker;
- the GitHub emulator executing this repository's real workflow files;
- Debian's docker-registry as source and (htpasswd) destination, from tests/registries.py.

A "succeeded" job here means skopeo really put the image into the destination registry.

    from tests.live_stack import live_stack  # noqa: F401  (plus the registry fixtures)
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from emulator.core import GitHubEmulator
from imagesync_site.celery import app as celery_app
from jobs.models import SyncJob, TargetNamespace
from tests.registries import Registry

ROOT = Path(__file__).resolve().parent.parent
REPOSITORY = "acme/imagesync"
TOKEN = "e2e-github-token"
WEBHOOK_SECRET = "e2e-webhook-secret"


def wait_for(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def database_url() -> str:
    db = connection.settings_dict
    if connection.vendor != "postgresql":
        pytest.skip("end-to-end tests share the test database with a worker process: they need PostgreSQL")
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


@dataclass
class LiveStack:
    url: str
    emulator: GitHubEmulator
    source: Registry
    destination: Registry
    namespace: TargetNamespace
    owner: Any
    workdir: Path
    env: dict[str, str]
    processes: list[Process] = field(default_factory=list)

    def start(self, name: str, *args: str) -> Process:
        log = self.workdir / f"{name}.log"
        popen = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "imagesync_site", *args],
            cwd=ROOT, env=self.env, stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        process = Process(name, popen, log)
        self.processes.append(process)
        return process

    def start_worker(self) -> Process:
        worker = self.start(
            "worker", "worker", "--loglevel", "INFO", "--concurrency", "2",
            "--without-gossip", "--without-mingle", "--without-heartbeat", "--hostname", f"e2e-{os.getpid()}@%h",
        )
        wait_for(lambda: " ready." in worker.text() or worker.popen.poll() is not None, 60, "the Celery worker")
        assert worker.popen.poll() is None, worker.text()[-3000:]
        return worker

    def start_beat(self) -> Process:
        beat = self.start("beat", "beat", "--loglevel", "INFO", "--schedule", str(self.workdir / "beat-schedule"))
        wait_for(lambda: "beat: Starting" in beat.text() or beat.popen.poll() is not None, 60, "Celery beat")
        assert beat.popen.poll() is None, beat.text()[-3000:]
        return beat

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} ---\n{p.text()[-4000:]}" for p in self.processes)

    def wait_for_job(self, job: SyncJob, statuses: set[str] | str, timeout: float = 120) -> SyncJob:
        wanted = {statuses} if isinstance(statuses, str) else set(statuses)

        def reached() -> SyncJob | None:
            job.refresh_from_db()
            if job.status in wanted:
                return job
            if job.is_finished:
                raise AssertionError(
                    f"job {job.pk} ended {job.status} ({job.error_message!r}), not {wanted}\n{self.logs()}"
                )
            return None

        try:
            return wait_for(reached, timeout, f"job {job.pk} to become {'/'.join(sorted(wanted))}")
        except AssertionError as exc:
            if "timed out" in str(exc):
                raise AssertionError(f"{exc}; it is {job.status}\n{self.logs()}") from None
            raise

    def close(self) -> None:
        for process in reversed(self.processes):
            process.stop()


@pytest.fixture
def live_stack_factory(
    transactional_db, live_server, settings, source_registry, destination_registry, tmp_path
) -> Iterator[Callable[..., LiveStack]]:
    """``live_stack_factory(webhooks=True, beat=False, poll_interval=1, **emulator_options)``."""
    stacks: list[LiveStack] = []
    emulators: list[GitHubEmulator] = []

    def make(*, webhooks: bool = True, beat: bool = False, poll_interval: int = 1,
             destination_credential: str | None = None, extra_hosts: tuple[str, ...] = (),
             **emulator_options: Any) -> LiveStack:
        from tests.factories import NamespaceFactory, UserFactory

        insecure = ",".join([source_registry.host, destination_registry.host, *extra_hosts])
        emulator = GitHubEmulator(
            repo_root=ROOT,
            repository=REPOSITORY,
            token=TOKEN,
            secrets={"DESTINATION_CREDENTIAL": destination_credential or destination_registry.credential},
            variables={"IMAGESYNC_ALLOWED_DESTINATIONS": destination_registry.host},
            extra_env={"IMAGESYNC_INSECURE_REGISTRIES": insecure},
            webhook_url=f"{live_server.url}/github/webhook" if webhooks else None,
            webhook_secret=WEBHOOK_SECRET,
            control=True,
            **{"requested_delay": 0.05, "queue_delay": 0.2, "kill_grace": 2.0, "shutdown_grace": 0.0, **emulator_options},
        ).start()
        emulators.append(emulator)
        github = {
            "GITHUB_API_URL": emulator.url,
            "GITHUB_TOKEN": TOKEN,
            "GITHUB_REPOSITORY": REPOSITORY,
            "GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "IMAGESYNC_POLL_INTERVAL": str(poll_interval),
            "IMAGESYNC_DISPATCH_GRACE": "3",
            "IMAGESYNC_RUN_LIST_LAG": "2",
        }
        # The portal in this process and the worker processes must agree.
        settings.GITHUB_API_URL = emulator.url
        settings.GITHUB_TOKEN = TOKEN
        settings.GITHUB_REPOSITORY = REPOSITORY
        settings.GITHUB_WEBHOOK_SECRET = WEBHOOK_SECRET
        settings.IMAGESYNC_DISPATCH_GRACE = 3
        settings.IMAGESYNC_RUN_LIST_LAG = 2
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "IMAGESYNC_"))}
        workdir = tmp_path / f"stack{len(stacks)}"
        workdir.mkdir()
        env.update(github, DATABASE_URL=database_url(), IMAGESYNC_DATA_DIR=str(workdir))
        owner = UserFactory(email=f"owner{len(stacks)}@example.com")
        namespace = NamespaceFactory(registry=destination_registry.host, namespace="team", members=[owner])
        stack = LiveStack(
            url=live_server.url, emulator=emulator, source=source_registry, destination=destination_registry,
            namespace=namespace, owner=owner, workdir=workdir, env=env,
        )
        stacks.append(stack)
        # Tasks left in the shared test broker by earlier tests must not reach this worker.
        celery_app.control.purge()
        stack.start_worker()
        if beat:
            stack.start_beat()
        return stack

    yield make
    for stack in reversed(stacks):
        stack.close()
    for emulator in reversed(emulators):
        emulator.close()


@pytest.fixture
def live_stack(live_stack_factory) -> LiveStack:
    return live_stack_factory()
