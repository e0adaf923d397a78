"""Not a benchmark: deterministic reproductions of two poller defects found while measuring (see
docs/benchmarks.md, "Defects found"). Polling only (no webhook arrives).

quiet  A job whose run finished while the job was left out of a poll (it had news less than
       IMAGESYNC_POLL_INTERVAL ago) is never updated by later polls: they send the ETag of the
       list that already held its news, and get 304.
page2  With more than 100 runs in the poll's window, a change to a run on page 2 or later is
       never seen while page 1 answers 304: the poller stops at a 304 on page 1.

    .venv/bin/python bench/repro_poll_etag.py            # both; exit status 1 if one reproduces

Uses the bench database and Redis DB (see bench/stack.py), an emulator in this process, and calls
the services and the poll task directly (Celery eager), so the timing is controlled.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.stack import REPOSITORY, TOKEN, Stack  # noqa: E402
from emulator.core import GitHubEmulator  # noqa: E402

INTERVAL = 2


def new_emulator() -> GitHubEmulator:
    return GitHubEmulator(
        repo_root=ROOT, repository=REPOSITORY, token=TOKEN, webhook_url=None,
        requested_delay=0.0, queue_delay=0.0, max_concurrent_runs=200, shutdown_grace=0.0, kill_grace=1.0,
    ).start()


def use(emulator: GitHubEmulator) -> None:
    from django.conf import settings

    from jobs import services
    from jobs.models import SyncJob

    SyncJob.objects.all().delete()
    settings.GITHUB_API_URL = emulator.url
    services._clients.clear()


def reporter(emulator: GitHubEmulator, jobs: dict[str, object]) -> Callable[[str], None]:
    def show(label: str) -> None:
        runs = {run.id: f"{run.status}/{run.conclusion}" for run in emulator.runs}
        lists = [f"{r.status}" for r in emulator.request_log if r.route == "workflow_runs"]
        parts = []
        for name, job in jobs.items():
            job.refresh_from_db()
            run = runs.get(job.github_run_id, "-") if job.github_run_id else "-"
            parts.append(f"{name}: job {job.status:<9} run {run:<19}")
        print(f"  {label:<48} " + " | ".join(parts) + f" | list answers so far: {' '.join(lists[-6:])}")

    return show


def scenario_quiet(stack: Stack) -> bool:
    from bench.engine import create_job
    from jobs import tasks
    from jobs.models import SyncJob

    print("quiet: W runs for 10 minutes; X is dispatched and its run completes at once")
    emulator = new_emulator()
    try:
        use(emulator)
        emulator.set_dry("success", 600)
        w, _ = create_job(stack, "copy", "repro-w")  # eager: dispatched when the transaction commits
        w.refresh_from_db()
        emulator.wait_for_run(w.github_run_id, "in_progress", timeout=10)
        time.sleep(INTERVAL + 0.5)
        tasks.poll_active_runs()  # W → running
        time.sleep(INTERVAL + 0.5)  # W is quiet again
        emulator.set_dry("success", 0)
        x, _ = create_job(stack, "copy", "repro-x")
        x.refresh_from_db()
        emulator.wait_for_run(x.github_run_id, "completed", timeout=10)
        show = reporter(emulator, {"W": w, "X": x})
        show("X dispatched; its run completed")
        tasks.poll_active_runs()
        show("poll 1 (X had news < interval ago)")
        for n in range(2, 7):
            time.sleep(INTERVAL + 0.5)
            tasks.poll_active_runs()
            show(f"poll {n}")
        return SyncJob.objects.get(pk=x.pk).status != SyncJob.Status.SUCCEEDED
    finally:
        emulator.close(grace=0)


def scenario_page2(stack: Stack) -> bool:
    from bench.engine import create_job
    from jobs import tasks
    from jobs.models import SyncJob

    print("page2: X's run is in progress; 100 newer runs (not the portal's) fill page 1; X's run ends")
    emulator = new_emulator()
    try:
        use(emulator)
        emulator.set_dry("success", 600)
        x, _ = create_job(stack, "copy", "repro-p2")
        x.refresh_from_db()
        emulator.wait_for_run(x.github_run_id, "in_progress", timeout=10)
        emulator.set_dry("success", 0)
        time.sleep(1.1)  # runs are created with second precision: keep X's run strictly older
        for index in range(100):  # dispatched by hand or by another tool: no job of the portal
            emulator.dispatch("copy.yml", "main", {
                "source_repo": f"library/busybox:{index}", "destination_repo": f"bench/busybox:{index}",
                "request_id": f"other-{index}",
            })
        emulator.wait_for(lambda: all(r.status == "completed" for r in emulator.runs if r.id != x.github_run_id),
                          timeout=60, message="the 100 other runs")
        show = reporter(emulator, {"X": x})
        time.sleep(INTERVAL + 0.5)
        tasks.poll_active_runs()
        show("poll 1 (pages 1 and 2 read, X in progress)")
        time.sleep(INTERVAL + 0.5)
        tasks.poll_active_runs()
        show("poll 2")
        emulator.cancel(x.github_run_id)  # X's run ends (cancelled on GitHub); page 1 is unchanged
        emulator.wait_for_run(x.github_run_id, "completed", timeout=10)
        show("X's run completed (on page 2)")
        for n in range(3, 7):
            time.sleep(INTERVAL + 0.5)
            tasks.poll_active_runs()
            show(f"poll {n}")
        return SyncJob.objects.get(pk=x.pk).is_active
    finally:
        emulator.close(grace=0)


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="imagesync-repro-"))
    stack = Stack(workdir, poll_interval=INTERVAL)
    os.environ.update(stack.env("http://127.0.0.1:9"))
    reproduced: list[str] = []
    try:
        import django

        stack._ensure_database()
        django.setup()
        from django.conf import settings

        settings.IMAGESYNC_POLL_INTERVAL = INTERVAL
        from imagesync_site.celery import app

        app.conf.task_always_eager = True
        stack._reset_state()
        for name, scenario in (("quiet", scenario_quiet), ("page2", scenario_page2)):
            stuck = scenario(stack)
            print(f"  => {name}: " + ("the job is stuck although its run completed (DEFECT REPRODUCED)"
                                      if stuck else "the job was updated (not reproduced)") + "\n")
            if stuck:
                reproduced.append(name)
    finally:
        try:
            from jobs.models import SyncJob

            SyncJob.objects.all().delete()  # leave the bench database without active jobs
        except Exception:  # noqa: BLE001 - Django may not have started
            pass
        shutil.rmtree(workdir, ignore_errors=True)
    print("reproduced:", ", ".join(reproduced) or "none")
    return 1 if reproduced else 0


if __name__ == "__main__":
    sys.exit(main())
