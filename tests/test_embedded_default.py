"""With no environment at all the portal runs on one machine: SQLite and a file-based broker."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
SERVICE_VARIABLES = {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DJANGO_SETTINGS_MODULE", "DEBUG"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except requests.RequestException as exc:
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what} (last error: {last})")


@pytest.mark.e2e
def test_make_run_serves_the_portal_with_no_environment_and_stops_cleanly(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARIABLES}
    env["IMAGESYNC_DATA_DIR"] = str(tmp_path)
    env["PORT"] = str(port := free_port())
    python = sys.executable
    subprocess.run([python, "manage.py", "migrate", "--no-input", "-v0"], cwd=ROOT, env=env, check=True, timeout=120)
    admin = subprocess.run(
        [python, "manage.py", "ensure_admin"], cwd=ROOT, env=env, check=True, timeout=60,
        capture_output=True, text=True, stdin=subprocess.DEVNULL,
    )
    assert "One-time password for admin@localhost" in admin.stdout
    assert (tmp_path / "db.sqlite3").exists()

    proc = subprocess.Popen([python, "scripts/run.py"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: requests.get(f"{base}/healthz", timeout=2).ok, 60, "the web server")
        login = requests.get(f"{base}/accounts/login/", timeout=5)
        assert login.status_code == 200
        assert "csrfmiddlewaretoken" in login.text
        assert requests.get(f"{base}/", timeout=5, allow_redirects=False).status_code == 302
        # The file-based broker's folders exist once the worker and beat are up.
        wait_until(lambda: (tmp_path / "celerybeat-schedule").exists() or any(tmp_path.glob("celerybeat-schedule*")), 60, "celery beat")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            output, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
            raise AssertionError("scripts/run.py did not stop within 30 s of Ctrl-C") from None
    text = output.decode(errors="replace")
    assert proc.returncode == 0, text[-3000:]
    assert "celery@" in text and "beat" in text.lower()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
