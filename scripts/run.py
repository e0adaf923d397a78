"""Run the portal, a Celery worker and Celery beat together in the foreground.

`make run` calls this after migrating. Ctrl-C (or SIGTERM) stops all three; if one of them
exits on its own, the others are stopped too, so a half-running portal never lingers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def commands(port: str, debug: bool) -> dict[str, list[str]]:
    web = [
        str(BIN / "gunicorn"),
        "imagesync_site.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        os.environ.get("WEB_CONCURRENCY", "2"),
        "--access-logfile",
        "-",
    ]
    if debug:
        web.append("--reload")
    celery = [str(BIN / "celery"), "-A", "imagesync_site"]
    return {
        "web": web,
        "worker": [*celery, "worker", "--loglevel", "INFO", "--concurrency", "2"],
        "beat": [*celery, "beat", "--loglevel", "INFO"],
    }


def main() -> int:
    port = os.environ.get("PORT", "8000")
    if not port.isdigit() or not 0 < int(port) < 65536:
        print(f"imagesync: PORT={port!r} is not a port number", file=sys.stderr)
        return 2
    debug = os.environ.get("DEBUG", "true").strip().lower() in ("true", "1")
    procs: dict[str, subprocess.Popen[bytes]] = {}
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    for name, argv in commands(port, debug).items():
        # Own process group each, so a Ctrl-C in the terminal reaches them only through us.
        procs[name] = subprocess.Popen(argv, cwd=ROOT, start_new_session=True)
    print(f"imagesync: http://127.0.0.1:{port}/  (Ctrl-C stops web, worker and beat)", flush=True)

    exit_code = 0
    while not stopping:
        for name, proc in procs.items():
            if proc.poll() is not None:
                print(f"imagesync: {name} exited with {proc.returncode}; stopping the others", file=sys.stderr)
                exit_code = proc.returncode or 1
                stopping = True
                break
        time.sleep(0.3)

    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for proc in procs.values():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
