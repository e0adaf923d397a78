"""The imagesync command, run as a subprocess against a live test server.

No worker runs here, so jobs stay where they are created; the --wait tests move them through
their states from the test (with the same service the worker uses) while the CLI watches.
"""

from __future__ import annotations

import ast
import json
import os
import pty
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from accounts.tokens import token_create, token_revoke
from jobs.api.throttles import JobCreateThrottle, Window
from jobs.models import SyncJob
from jobs.services import job_transition
from tests.api_support import fresh_throttles, no_dispatch, rates, token_for  # noqa: F401
from tests.factories import JobFactory

ROOT = Path(__file__).resolve().parent.parent
HOST = "registry.cn-hangzhou.aliyuncs.com"

pytestmark = pytest.mark.usefixtures("fresh_throttles", "no_dispatch")


class Cli:
    def __init__(self, url: str, token: str, home: Path) -> None:
        self.url, self.token, self.home = url, token, home

    def env(self, **extra: str | None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("IMAGESYNC_", "DJANGO_", "LC_"))}
        env.update(
            HOME=str(self.home),
            XDG_CONFIG_HOME=str(self.home / "config"),
            PYTHONPATH=str(ROOT),
            LANG="C.UTF-8",
            IMAGESYNC_URL=self.url,
            IMAGESYNC_TOKEN=self.token,
        )
        for name, value in extra.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        return env

    def command(self, args: tuple[str, ...]) -> list[str]:
        return [sys.executable, "-m", "imagesync_cli", *args]

    def run(
        self, *args: str, input: str | None = None, **env: str | None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(args),
            input=input,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=self.env(**env),
            cwd=self.home,
            stdin=None if input is not None else subprocess.DEVNULL,
        )

    def start(self, *args: str, **env: str | None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.command(args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            stdin=subprocess.DEVNULL,
            env=self.env(**env),
            cwd=self.home,
        )


@pytest.fixture
def cli(live_server, alice, team_namespace, settings, tmp_path) -> Cli:
    rates(settings, api="100000/minute")
    return Cli(live_server.url, token_for(alice, name="cli"), tmp_path)


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def wait_for_job(**filters: object) -> SyncJob:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        job = SyncJob.objects.filter(**filters).first()
        if job is not None:
            return job
        time.sleep(0.05)
    raise AssertionError(f"no job {filters} appeared")


def drive(job: SyncJob, *statuses: str, **last_fields: object) -> None:
    """Move a job through ``statuses`` as the worker would, pausing so a watcher sees each."""
    for index, status in enumerate(statuses):
        time.sleep(0.4)
        fields = last_fields if index == len(statuses) - 1 else {}
        assert job_transition(job=job, to=status, actor="worker", reason="test", **fields)


# -- submitting -----------------------------------------------------------------------------


def test_copy_takes_exec_sh_short_forms(cli, alice):
    result = cli.run("copy", "nginx:1.13", "team/nginx:1.13", "-y")
    assert result.returncode == 0, result.stderr
    job = SyncJob.objects.get(owner=alice)
    assert (job.source, job.destination) == ("docker.io/library/nginx:1.13", f"{HOST}/team/nginx:1.13")
    assert (
        result.stdout.strip()
        == f"Started job #{job.pk}: copy docker.io/library/nginx:1.13 -> {HOST}/team/nginx:1.13"
    )


def test_copy_takes_full_references_and_prints_json(cli, alice):
    result = cli.run("copy", "ghcr.io/x/y:1", f"{HOST}/team/y:1", "-y", "--json")
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert (body["status"], body["source"], body["destination"]) == (
        "pending",
        "ghcr.io/x/y:1",
        f"{HOST}/team/y:1",
    )
    assert SyncJob.objects.get(owner=alice).pk == body["id"]


def test_a_namespace_alone_as_destination_keeps_the_source_name(cli, alice):
    assert cli.run("copy", "bitnami/redis:7.2", "team", "-y").returncode == 0
    assert cli.run("copy", "nginx:1", f"{HOST}/team", "-y").returncode == 0
    assert sorted(SyncJob.objects.values_list("destination", flat=True)) == [
        f"{HOST}/team/nginx:1",
        f"{HOST}/team/redis:7.2",
    ]


def test_a_clash_is_explained_and_answered_with_on_clash(cli, alice):
    assert cli.run("copy", "redis:7", "-y").returncode == 0
    refused = cli.run("copy", "bitnami/redis:7", "-y")
    assert refused.returncode != 0
    assert "team/bitnami-redis:7" in refused.stderr and "(answer with --on-clash rename or --on-clash keep)" in refused.stderr
    assert cli.run("copy", "bitnami/redis:7", "-y", "--on-clash", "rename").returncode == 0
    assert SyncJob.objects.filter(destination=f"{HOST}/team/bitnami-redis:7").exists()
    sync = cli.run("sync", "bitnami/redis", "-y")
    assert sync.returncode != 0 and "(answer with --on-clash keep)" in sync.stderr
    assert cli.run("sync", "bitnami/redis", "-y", "--on-clash", "rename").returncode == 2  # not a choice for sync


def test_sync_takes_a_scope_and_tag_filters_and_ignores_a_destination_tag_as_exec_sh(cli, alice):
    result = cli.run("sync", "bitnami/redis", "team", "--include", r"^7\.", "--exclude=-rc", "-y")
    assert result.returncode == 0, result.stderr
    assert cli.run("sync", "ghcr.io/x/app:1", f"{HOST}/team/app:1", "-y").returncode == 0
    jobs = {j.source: j for j in SyncJob.objects.filter(kind="sync")}
    redis = jobs["docker.io/bitnami/redis"]
    assert (redis.destination, redis.tag_include, redis.tag_exclude) == (f"{HOST}/team/redis", r"^7\.", "-rc")
    assert jobs["ghcr.io/x/app"].destination == f"{HOST}/team/app"
    refused = cli.run("sync", "nginx", "--pull", "-y")
    assert refused.returncode == 2 and "a sync has no single tag to pull" in refused.stderr


def test_a_file_of_images_is_checked_whole_then_sent_in_batches(cli, alice, tmp_path, settings):
    rates(settings, job_create="100/minute")
    images = tmp_path / "images.txt"
    images.write_text(
        "# team images\n"
        + "".join(f"nginx:1.{n}   team/web:1.{n}  # web\n" for n in range(11))
        + "\nredis:7\n"
    )
    result = cli.run("copy", "-f", str(images), "-y")
    assert result.returncode == 0, result.stderr
    assert SyncJob.objects.filter(owner=alice).count() == 12
    assert result.stdout.count("Started job #") == 12


def test_a_bad_line_stops_the_whole_file_before_any_request(cli, alice, tmp_path):
    images = tmp_path / "images.txt"
    images.write_text("nginx:1\nnginx:1 team/nginx:bad!tag\nredis:7 team/redis:7 extra\nNginx\n")
    result = cli.run("copy", "-f", str(images), "-y", IMAGESYNC_URL=closed_port_url())
    assert result.returncode == 2
    assert "images.txt:2: invalid destination 'team/nginx:bad!tag': a tag is 1-128" in result.stderr
    assert "images.txt:3: expected SRC [DST], found 3 words" in result.stderr
    assert "images.txt:4: invalid source 'Nginx': repository names must be lower case" in result.stderr
    assert "cannot reach" not in result.stderr


def test_a_line_the_portal_refuses_names_the_line_and_nothing_is_started(cli, alice, tmp_path):
    images = tmp_path / "images.txt"
    images.write_text("nginx:1\nnginx:2 other/nginx:2\n")
    result = cli.run("copy", "-f", str(images), "-y")
    assert result.returncode == 1
    assert (
        "images.txt:2 (nginx:2): destination: no namespace named other that you may push to "
        f"(yours: {HOST}/team)" in result.stderr
    )
    assert not SyncJob.objects.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["copy", "nginx:1.13\n"], "invalid source 'nginx:1.13\\n': it contains whitespace"),
        (["copy", "nginx:-1"], "invalid source 'nginx:-1': a tag is 1-128"),
        (
            ["copy", "nginx", "team/NGINX:1"],
            "invalid destination 'team/NGINX:1': repository names must be lower case",
        ),
        (["copy", "nginx", "team:1"], "invalid destination 'team:1': expected NAMESPACE"),
        (["copy", "nginx", HOST], "names a registry but no namespace"),
        (["copy", "nginx@sha256:abc"], "a digest is sha256: followed by 64"),
        (["status", "twelve"], "'twelve' is not a job number"),
    ],
)
def test_an_invalid_reference_is_refused_before_any_request(tmp_path, args, message):
    cli = Cli(closed_port_url(), "isk_aaaaaaaa_" + "a" * 43, tmp_path)
    result = cli.run(*args, "-y") if args[0] == "copy" else cli.run(*args)
    assert result.returncode == 2
    assert message in result.stderr and "cannot reach" not in result.stderr


def test_an_unreachable_portal_is_said_plainly(tmp_path):
    result = Cli(closed_port_url(), "isk_aaaaaaaa_" + "a" * 43, tmp_path).run("list")
    assert result.returncode == 3
    assert (
        "cannot reach the portal at http://127.0.0.1:" in result.stderr and "Traceback" not in result.stderr
    )


def test_an_address_that_is_not_the_portal_is_said_plainly(cli):
    result = cli.run("list", IMAGESYNC_URL=f"{cli.url}/elsewhere")
    assert result.returncode == 1
    assert "answered HTTP 404 with something that is not the imagesync API" in result.stderr


def test_a_bad_or_revoked_token_is_said_plainly(cli, alice):
    result = cli.run("list", IMAGESYNC_TOKEN="isk_aaaaaaaa_" + "a" * 43)
    assert result.returncode == 4
    assert "the portal refused the token: Unknown API token." in result.stderr
    assert f"{cli.url}/accounts/tokens/" in result.stderr
    row, token = token_create(user=alice, name="old")
    token_revoke(token=row)
    assert "This API token was revoked." in cli.run("list", IMAGESYNC_TOKEN=token).stderr


def test_no_configuration_at_all_says_how_to_log_in(cli):
    result = cli.run("list", IMAGESYNC_URL=None, IMAGESYNC_TOKEN=None)
    assert result.returncode == 3
    assert "no portal configured: run imagesync login" in result.stderr


def test_a_throttled_request_waits_says_so_and_goes_through(cli, alice, settings):
    # One creation 57 s ago fills the minute's single slot for 3 more seconds.
    rates(settings, job_create="1/minute")
    key = JobCreateThrottle.cache_format % {"scope": "job_create", "ident": f"user:{alice.pk}"}
    Window(key, limit=1, period=60).take(1, now=time.time() - 57)
    started = time.monotonic()
    result = cli.run("copy", "nginx:1", "-y")
    assert result.returncode == 0, result.stderr
    assert "the portal is throttling requests" in result.stderr and "waiting" in result.stderr
    assert time.monotonic() - started >= 1
    assert SyncJob.objects.filter(owner=alice).count() == 1


# -- following jobs -------------------------------------------------------------------------


def test_wait_follows_the_job_to_success_and_exits_0(cli, alice):
    proc = cli.start("copy", "nginx:1.13", "team/nginx:1.13", "-y", "--wait", "--interval", "0.1")
    job = wait_for_job(owner=alice)
    drive(job, "dispatching", "queued", "running", "succeeded", conclusion="success")
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    seen = [line.split()[1] for line in stdout.splitlines() if line.startswith(f"#{job.pk} ")]
    assert seen[0] == "pending" and seen[-1] == "succeeded" and "running" in seen
    assert f"Job #{job.pk} succeeded: {HOST}/team/nginx:1.13" in stdout
    assert f"docker pull {HOST}/team/nginx:1.13" in stdout


def test_wait_exits_non_zero_with_the_reason_when_the_job_fails(cli, alice):
    proc = cli.start("copy", "nginx:1.13", "-y", "--wait", "--interval", "0.1")
    job = wait_for_job(owner=alice)
    drive(
        job,
        "dispatching",
        "queued",
        "failed",
        error_message="manifest unknown: nginx:1.13",
        failed_step="copy › skopeo copy",
        github_run_url="https://github.com/o/r/actions/runs/7",
    )
    stdout, _stderr = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert f"Job #{job.pk} failed: manifest unknown: nginx:1.13" in stdout
    assert "failed step: copy › skopeo copy" in stdout and "https://github.com/o/r/actions/runs/7" in stdout


def test_wait_on_a_batch_needs_every_job_to_succeed(cli, alice, tmp_path):
    images = tmp_path / "images.txt"
    images.write_text("nginx:1\nredis:7\n")
    proc = cli.start("copy", "-f", str(images), "-y", "--wait", "--interval", "0.1", "--json")
    first = wait_for_job(owner=alice, source="docker.io/library/nginx:1")
    second = wait_for_job(owner=alice, source="docker.io/library/redis:7")
    drive(first, "dispatching", "queued", "succeeded")
    drive(second, "cancelled", error_message="cancelled at your request")
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 1, stderr
    assert [j["status"] for j in json.loads(stdout)["jobs"]] == ["succeeded", "cancelled"]
    assert f"#{second.pk} cancelled" in stderr  # progress goes to stderr with --json


def test_pull_pulls_the_copy_and_tags_it_with_the_source_name(cli, alice, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "docker.log"
    docker = bin_dir / "docker"
    docker.write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    docker.chmod(0o755)
    proc = cli.start(
        "copy",
        "nginx:1.13",
        "team/nginx:1.13",
        "-y",
        "--pull",
        "--interval",
        "0.1",
        PATH=f"{bin_dir}:{os.environ['PATH']}",
    )
    job = wait_for_job(owner=alice)
    drive(job, "dispatching", "queued", "succeeded")
    _stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert log.read_text().splitlines() == [
        f"pull {HOST}/team/nginx:1.13",
        f"tag {HOST}/team/nginx:1.13 nginx:1.13",
    ]


# -- status, list, cancel, retry, delete ----------------------------------------------------


def test_status_shows_a_job_its_history_and_as_json(cli, alice, team_namespace):
    job = JobFactory(
        owner=alice,
        namespace=team_namespace,
        kind="sync",
        source="docker.io/bitnami/redis",
        destination=f"{HOST}/team/redis",
        status="failed",
        error_message="2 tags failed",
        result={
            "copied": [{"tag": "7.2", "digest": "sha256:" + "a" * 64}],
            "failed": [{"tag": "6", "reason": "denied"}],
        },
    )
    human = cli.run("status", f"#{job.pk}")
    assert human.returncode == 0, human.stderr
    assert f"Job #{job.pk}  sync  failed" in human.stdout and "Error:        2 tags failed" in human.stdout
    assert "7.2  copied  sha256:" in human.stdout and "6  failed  denied" in human.stdout
    assert json.loads(cli.run("status", str(job.pk), "--json").stdout)["tags"][1]["reason"] == "denied"
    assert cli.run("status").stdout.strip() == "No active jobs. (imagesync list shows the recent ones.)"
    other = cli.run("status", str(JobFactory(namespace=team_namespace).pk))
    assert other.returncode == 1 and "Not found." in other.stderr


def test_list_filters_and_prints_json_for_scripts(cli, alice, bob, team_namespace):
    JobFactory(owner=alice, namespace=team_namespace, source="docker.io/library/nginx:1", status="succeeded")
    running = JobFactory(
        owner=alice, namespace=team_namespace, source="docker.io/library/redis:7", status="running"
    )
    JobFactory(owner=bob, namespace=team_namespace, source="docker.io/library/mysql:8")
    table = cli.run("list")
    assert table.returncode == 0
    assert table.stdout.splitlines()[0].split() == [
        "ID",
        "KIND",
        "STATUS",
        "CREATED",
        "SOURCE",
        "DESTINATION",
    ]
    assert "redis:7" in table.stdout and "nginx:1" in table.stdout and "mysql" not in table.stdout
    active = json.loads(cli.run("list", "--status", "active", "--json").stdout)
    assert [j["id"] for j in active] == [running.pk]
    assert "only staff may list other people's jobs" in cli.run("list", "--all").stderr


def test_list_says_when_the_count_is_only_a_lower_bound(cli, alice, team_namespace, monkeypatch):
    from jobs import pagination

    JobFactory.create_batch(3, owner=alice, namespace=team_namespace, status="succeeded")
    assert cli.run("list", "--limit", "1").stdout.splitlines()[-1] == "(1 of 3; --limit shows more)"
    monkeypatch.setattr(pagination, "COUNT_LIMIT", 2)  # the server counts at most 2 jobs
    assert cli.run("list", "--limit", "1").stdout.splitlines()[-1] == "(1 of 2+; --limit shows more)"


def test_cancel_retry_and_delete(cli, alice, team_namespace):
    created = json.loads(cli.run("copy", "nginx:1", "-y", "--json").stdout)
    cancelled = cli.run("cancel", str(created["id"]))
    assert cancelled.returncode == 0 and cancelled.stdout.strip() == f"Job #{created['id']} cancelled."
    again = cli.run("cancel", str(created["id"]))
    assert again.returncode == 1 and "already finished (cancelled)" in again.stderr
    retried = cli.run("retry", str(created["id"]), "--json")
    assert retried.returncode == 0, retried.stderr
    new = json.loads(retried.stdout)
    assert new["id"] != created["id"] and new["status"] == "pending"
    refused = cli.run("delete", str(new["id"]))
    assert refused.returncode == 1 and "cancel it first" in refused.stderr
    assert cli.run("delete", str(created["id"])).stdout.strip() == f"Deleted job #{created['id']}."
    assert not SyncJob.objects.filter(pk=created["id"]).exists()


def test_namespaces_and_whoami(cli):
    namespaces = cli.run("namespaces")
    assert namespaces.returncode == 0 and f"{HOST}/team" in namespaces.stdout and "0/300" in namespaces.stdout
    assert cli.run("whoami").stdout.startswith(f"alice@example.com on {cli.url} (token 'cli'")


# -- login, confirmation, packaging ---------------------------------------------------------


def test_login_checks_the_token_and_writes_a_private_config_file(cli, alice):
    token = token_for(alice, name="laptop")
    result = cli.run(
        "login",
        "--url",
        cli.url + "/",
        "--with-token",
        input=token + "\n",
        IMAGESYNC_URL=None,
        IMAGESYNC_TOKEN=None,
    )
    assert result.returncode == 0, result.stderr
    path = cli.home / "config" / "imagesync" / "config.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {"url": cli.url, "token": token}
    whoami = cli.run("whoami", IMAGESYNC_URL=None, IMAGESYNC_TOKEN=None)
    assert "(token 'laptop'" in whoami.stdout
    assert cli.run("logout").returncode == 0 and not path.exists()


def test_login_refuses_a_bad_token_and_writes_nothing(cli):
    bad = cli.run(
        "login",
        "--url",
        cli.url,
        "--with-token",
        input="isk_aaaaaaaa_" + "a" * 43,
        IMAGESYNC_URL=None,
        IMAGESYNC_TOKEN=None,
    )
    assert bad.returncode == 4 and "Unknown API token." in bad.stderr
    garbage = cli.run("login", "--url", cli.url, "--with-token", input="hunter2", IMAGESYNC_URL=None)
    assert garbage.returncode == 2 and "not an imagesync API token" in garbage.stderr
    assert not (cli.home / "config" / "imagesync" / "config.json").exists()


def run_on_a_terminal(cli: Cli, answer: str, *args: str) -> tuple[int, str]:
    main, replica = pty.openpty()
    proc = subprocess.Popen(
        cli.command(args), stdin=replica, stdout=replica, stderr=replica, env=cli.env(), cwd=cli.home
    )
    os.close(replica)
    output = b""
    answered = False
    deadline = time.monotonic() + 30
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            output += os.read(main, 1024)
        except OSError:
            break
        if not answered and b"[y/N]" in output:
            os.write(main, answer.encode() + b"\n")
            answered = True
    proc.wait(timeout=10)
    try:
        while chunk := os.read(main, 1024):
            output += chunk
    except OSError:
        pass
    os.close(main)
    return proc.returncode, output.decode()


def test_on_a_terminal_it_asks_first_and_no_starts_nothing(cli, alice):
    code, output = run_on_a_terminal(cli, "n", "copy", "nginx:1.13", "team/nginx:1.13")
    assert "copy nginx:1.13 -> team/nginx:1.13" in output and "Start 1 job? [y/N]" in output
    assert code == 1 and "nothing started" in output
    assert not SyncJob.objects.exists()
    code, output = run_on_a_terminal(cli, "y", "copy", "nginx:1.13", "team/nginx:1.13")
    assert code == 0 and "Started job #" in output
    assert SyncJob.objects.count() == 1


def test_the_cli_needs_neither_django_nor_a_python_newer_than_3_10():
    check = "import sys, imagesync_cli.main; sys.exit('django' in sys.modules)"
    independent = subprocess.run(
        [sys.executable, "-c", check], cwd=ROOT, env={"PATH": os.environ["PATH"]}, check=False
    )
    assert independent.returncode == 0
    for path in (ROOT / "imagesync_cli").glob("*.py"):
        ast.parse(path.read_text(), filename=str(path), feature_version=(3, 10))


def test_make_installs_the_imagesync_command_into_the_venv():
    script = Path(sys.executable).with_name("imagesync")
    assert script.exists(), "run `make test-deps` (or pip install --no-deps -e .) to install the CLI"
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True, check=True)
    assert result.stdout.startswith("imagesync ")
