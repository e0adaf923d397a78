"""imagesync: copy or sync container images into your registry namespaces through the portal.

    imagesync copy nginx:1.13 ikrong/nginx:1.13      imagesync sync bitnami/redis ikrong
    imagesync copy -f images.txt -y --wait            imagesync status 12 / list / cancel 12 / retry 12

Exit codes: 0 done (with --wait: every job succeeded); 1 refused by the portal, or a job did not
succeed; 2 bad usage or invalid input (nothing was sent); 3 portal unreachable or not
configured; 4 token refused; 130 interrupted.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TextIO
from urllib.parse import urlsplit

from imagesync_cli import __version__, config
from imagesync_cli.client import EXIT_FAILED, EXIT_UNREACHABLE, ApiError, Client, flatten_errors
from imagesync_cli.references import COMPONENT_RE, HOST_RE, InvalidReference, is_host, parse

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
BATCH_SIZE = 10  # the API's batch limit (also its per-minute creation allowance)
TOKEN_RE = re.compile(r"isk_[a-z0-9]{8}_[A-Za-z0-9_-]{43}", re.ASCII)
FINISHED = {"succeeded", "failed", "cancelled", "error"}


class UsageError(Exception):
    """Input refused before any request (exit 2)."""


class Declined(Exception):
    pass


@dataclass
class Item:
    """One job as the user asked for it, and the API body that asks for it."""

    label: str
    kind: str
    source: str
    target: str
    body: dict[str, Any] = field(default_factory=dict)


# -- reading what the user asked for --------------------------------------------------------

DESTINATION_FORMS = "NAMESPACE, NAMESPACE/NAME[:TAG] or REGISTRY/NAMESPACE/NAME[:TAG]"


def build_item(label: str, kind: str, source: str, target: str, args: argparse.Namespace) -> Item:
    try:
        parse(source)
    except InvalidReference as exc:
        raise UsageError(f"{_at(label)}invalid source {source!r}: {exc}") from None
    body: dict[str, Any] = {"kind": kind, "source": source}
    if args.namespace:
        body["namespace"] = (
            int(args.namespace) if args.namespace.isascii() and args.namespace.isdigit() else args.namespace
        )
    if args.on_clash:
        body["on_clash"] = args.on_clash
    if kind == "sync":
        if args.include:
            body["tag_include"] = args.include
        if args.exclude:
            body["tag_exclude"] = args.exclude
    if target:
        _add_target(label, kind, target, body)
    return Item(label, kind, source, target, body)


def _add_target(label: str, kind: str, target: str, body: dict[str, Any]) -> None:
    first, slash, rest = target.partition("/")
    has_host = bool(slash) and is_host(first)
    if not slash and is_host(first) and "." in first:
        raise UsageError(f"{_at(label)}{target!r} names a registry but no namespace: use {target}/NAMESPACE")
    parts = (rest if has_host else target).split("/")
    if len(parts) == 1:
        # Just a namespace (`ikrong` or `registry.example.com/ikrong`), as exec.sh's scope.
        if not COMPONENT_RE.fullmatch(parts[0]) or (has_host and not HOST_RE.fullmatch(first)):
            raise UsageError(f"{_at(label)}invalid destination {target!r}: expected {DESTINATION_FORMS}")
        if "namespace" in body and str(body["namespace"]) != target:
            raise UsageError(f"{_at(label)}the destination {target!r} and --namespace disagree; give one")
        body["namespace"] = target
        return
    try:
        ref = parse(target)
    except InvalidReference as exc:
        raise UsageError(f"{_at(label)}invalid destination {target!r}: {exc}") from None
    if kind == "sync":
        # A sync writes every tag, so a tag on the destination means nothing (exec.sh ignored it too).
        body["destination"] = f"{ref.host}/{ref.path}" if ref.host else ref.path
    else:
        if ref.digest:
            raise UsageError(f"{_at(label)}the destination takes a tag, not a digest")
        body["destination"] = target


def _at(label: str) -> str:
    return f"{label}: " if label else ""


def read_items(args: argparse.Namespace, kind: str) -> list[Item]:
    if args.file and args.source:
        raise UsageError("give SRC or -f FILE, not both")
    if not args.file:
        if not args.source:
            raise UsageError(f"say what to {kind}: imagesync {kind} SRC [DST], or -f FILE")
        return [build_item("", kind, args.source, args.target or "", args)]
    name = "<stdin>" if args.file == "-" else args.file
    try:
        if args.file == "-":
            lines = sys.stdin.read().splitlines()
        else:
            with open(args.file, encoding="utf-8") as fh:
                lines = fh.read().splitlines()
    except OSError as exc:
        raise UsageError(f"cannot read {name}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{name} is not UTF-8 text") from None
    items, errors = [], []
    for number, line in enumerate(lines, start=1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        label = f"{name}:{number}"
        if len(words) > 2:
            errors.append(f"{label}: expected SRC [DST], found {len(words)} words")
            continue
        try:
            items.append(build_item(label, kind, words[0], words[1] if len(words) > 1 else "", args))
        except UsageError as exc:
            errors.append(str(exc))
    if errors:
        raise UsageError("\n".join(errors))
    if not items:
        raise UsageError(f"{name} lists no images (one 'SRC [DST]' per line; '#' starts a comment)")
    return items


def parse_job_id(text: str) -> int:
    digits = text.removeprefix("#")
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 18 or int(digits) < 1:
        raise UsageError(f"{text!r} is not a job number")
    return int(digits)


# -- output ---------------------------------------------------------------------------------


def out(text: str = "") -> None:
    print(text, flush=True)


def err(text: str) -> None:
    print(f"imagesync: {text}", file=sys.stderr, flush=True)


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False), flush=True)


def when(value: str | None) -> str:
    if not value:
        return "-"
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def elapsed(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}" if minutes >= 60 else f"{minutes}:{secs:02d}"


def table(rows: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        out("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def job_line(job: dict[str, Any]) -> str:
    return f"{job['kind']} {job['source']} -> {job['destination']}"


def show_job(job: dict[str, Any]) -> None:
    out(f"Job #{job['id']}  {job['kind']}  {job['status']}")
    fields = [
        ("Source", job["source"]),
        ("Destination", job["destination"]),
        ("Namespace", job["namespace"]["name"]),
        ("Owner", job.get("owner") or "-"),
        (
            "Tag filters",
            " ".join(
                f
                for f in (
                    job.get("tag_include") and f"include={job['tag_include']}",
                    job.get("tag_exclude") and f"exclude={job['tag_exclude']}",
                )
                if f
            ),
        ),
        ("Created", when(job["created_at"])),
        ("Started", when(job.get("started_at")) if job.get("started_at") else ""),
        ("Finished", when(job.get("finished_at")) if job.get("finished_at") else ""),
        ("Cancel asked", when(job.get("cancel_requested_at")) if job.get("cancel_requested_at") else ""),
        ("Run", job.get("github_run_url") or ""),
        ("Error", job.get("error_message") or ""),
        ("Failed step", job.get("failed_step") or ""),
        ("Pull", job.get("pull_command") if job["status"] == "succeeded" else ""),
    ]
    for name, value in fields:
        if value:
            out(f"  {name + ':':<13} {value}")
    if job.get("tags"):
        out("  Tags:")
        for tag in job["tags"]:
            out(
                f"    {tag['tag']}  {tag['outcome']}  {tag.get('digest') or tag.get('reason') or ''}".rstrip()
            )
    if job.get("transitions"):
        out("  History:")
        for step in job["transitions"]:
            move = (
                step["to_status"]
                if step["from_status"] == step["to_status"]
                else f"{step['from_status']} -> {step['to_status']}"
            )
            out(f"    {when(step['at'])}  {move}  {step['actor']}  {step.get('reason') or ''}".rstrip())
    if job.get("log_excerpt") and job["status"] != "succeeded":
        out("  Log (last lines):")
        for line in job["log_excerpt"].splitlines()[-15:]:
            out(f"    {line}")


def outcome(job: dict[str, Any]) -> str:
    if job["status"] == "succeeded":
        pull = f"\n  {job['pull_command']}" if job.get("pull_command") else ""
        return f"Job #{job['id']} succeeded: {job['destination']}{pull}"
    reason = job.get("error_message") or job.get("conclusion") or f"the job ended {job['status']}"
    text = f"Job #{job['id']} {job['status']}: {reason}"
    if job.get("failed_step"):
        text += f"\n  failed step: {job['failed_step']}"
    if job.get("github_run_url"):
        text += f"\n  run: {job['github_run_url']}"
    return text + f"\n  details: imagesync status {job['id']}"


# -- talking to the portal ------------------------------------------------------------------


def connect(args: argparse.Namespace) -> Client:
    cfg = config.load()
    return make_client(cfg.url, cfg.token, args)


def make_client(url: str, token: str, args: argparse.Namespace) -> Client:
    def on_throttle(delay: float, detail: str) -> None:
        err(f"the portal is throttling requests ({detail or 'too many requests'}); waiting {delay:.0f} s")

    return Client(url, token, timeout=args.timeout, on_throttle=on_throttle)


def follow(
    client: Client, jobs: list[dict[str, Any]], interval: float, stream: TextIO
) -> list[dict[str, Any]]:
    """Poll until every job has finished; one request per round, whatever the number of jobs."""
    ids = [job["id"] for job in jobs]
    shown: dict[int, str] = {}
    tty = stream.isatty()
    started = time.monotonic()
    try:
        while True:
            page = client.jobs(id=ids, page_size=100)
            current = {job["id"]: job for job in page["results"]}
            missing = [i for i in ids if i not in current]
            if missing:
                raise ApiError(f"job #{missing[0]} no longer exists (deleted?)")
            for job_id in ids:
                status = current[job_id]["status"]
                if shown.get(job_id) != status and not tty:
                    stream.write(f"#{job_id} {status}\n")
                shown[job_id] = status
            finished = all(current[i]["status"] in FINISHED for i in ids)
            if tty:
                if len(ids) == 1:
                    job = current[ids[0]]
                    took = elapsed(time.monotonic() - started)
                    line = f"#{job['id']} {job['status']}  {took}  {job_line(job)}"
                else:
                    counts: dict[str, int] = {}
                    for job in current.values():
                        counts[job["status"]] = counts.get(job["status"], 0) + 1
                    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
                    line = f"{len(ids)} jobs: {summary}  {elapsed(time.monotonic() - started)}"
                width = shutil.get_terminal_size((100, 20)).columns
                stream.write("\r\x1b[K" + line[: width - 1] + ("\n" if finished else ""))
            stream.flush()
            if finished:
                return [current[i] for i in ids]
            time.sleep(interval)
    except KeyboardInterrupt:
        stream.write("\n")
        err(f"stopped following; the job(s) keep running: imagesync status {ids[0]}")
        raise


def report_created(items: list[Item], jobs: list[dict[str, Any]]) -> None:
    for job in jobs:
        if job.get("deduplicated"):
            out(f"Job #{job['id']} is already {job['status']} for the same request: {job_line(job)}")
        else:
            out(f"Started job #{job['id']}: {job_line(job)}")


def submit(client: Client, items: list[Item], batch: bool) -> list[dict[str, Any]]:
    created: list[dict[str, Any]] = []
    for start in range(0, len(items), BATCH_SIZE):
        chunk = items[start : start + BATCH_SIZE]
        try:
            if batch:
                created += client.create({"jobs": [item.body for item in chunk]})["jobs"]
            else:
                created.append(client.create(chunk[0].body))
        except ApiError as exc:
            if exc.status == 400:
                exc.message = "the portal refused the request:\n" + _explain(exc.body, chunk, batch)
            if created:
                exc.message += "\nalready started: " + ", ".join(f"#{job['id']}" for job in created)
            raise
    return created


def _explain(body: Any, chunk: list[Item], batch: bool) -> str:
    lines = []
    for path, message in flatten_errors(body):
        if (
            batch
            and len(path) >= 2
            and path[0] == "jobs"
            and path[1].isascii()
            and path[1].isdigit()
            and int(path[1]) < len(chunk)
        ):
            item, path = chunk[int(path[1])], path[2:]
            prefix = f"{item.label} ({item.source})"
        else:
            prefix = chunk[0].label if not batch else "batch"
        where = ": ".join(p for p in (prefix, ".".join(path)) if p)
        lines.append(f"  {where}: {message}" if where else f"  {message}")
        if path and path[-1] == "on_clash":
            answers = "--on-clash rename or --on-clash keep" if chunk[0].kind == "copy" else "--on-clash keep"
            if not any(answers in line for line in lines):
                lines.append(f"  (answer with {answers})")
    return "\n".join(lines)


def confirm(items: list[Item], args: argparse.Namespace) -> None:
    if args.yes or args.file == "-" or not sys.stdin.isatty():
        return
    for item in items:
        target = (
            f" -> {item.target}"
            if item.target
            else (f" -> namespace {args.namespace}" if args.namespace else "")
        )
        out(f"  {item.kind} {item.source}{target}")
    noun = "job" if len(items) == 1 else "jobs"
    try:
        answer = input(f"Start {len(items)} {noun}? [y/N] ")
    except EOFError:
        answer = ""
    if answer.strip().lower() not in ("y", "yes"):
        raise Declined("nothing started")


def docker_pull(job: dict[str, Any], source: str) -> None:
    """Pull the copy and tag it with the source's name, so `FROM nginx:1.13` keeps working (exec.sh)."""
    docker = shutil.which("docker")
    if docker is None:
        raise ApiError("--pull: docker is not installed or not on PATH")
    ref = parse(source)
    commands = [[docker, "pull", job["destination"]]]
    if ref.tag or not ref.digest:
        name = f"{ref.host}/{ref.path}" if ref.host else ref.path
        commands.append([docker, "tag", job["destination"], f"{name}:{ref.tag or 'latest'}"])
    for command in commands:
        out("$ " + " ".join(["docker", *command[1:]]))
        if subprocess.run(command, check=False).returncode != 0:
            raise ApiError(f"docker {command[1]} failed")
    if len(commands) == 1:
        out(f"(not tagged: {source} is pinned by digest only)")


# -- commands -------------------------------------------------------------------------------


def cmd_submit(args: argparse.Namespace) -> int:
    kind = args.command
    if args.pull and kind != "copy":
        raise UsageError("--pull works with copy (a sync has no single tag to pull)")
    items = read_items(args, kind)
    client = connect(args)
    confirm(items, args)
    jobs = submit(client, items, batch=bool(args.file))
    return finish(client, args, items, jobs)


def finish(client: Client, args: argparse.Namespace, items: list[Item], jobs: list[dict[str, Any]]) -> int:
    wait = args.wait or getattr(args, "pull", False)
    if not args.json:
        report_created(items, jobs)
    if not wait:
        if args.json:
            print_json(jobs[0] if len(jobs) == 1 and not getattr(args, "file", None) else {"jobs": jobs})
        return EXIT_OK
    final = follow(client, jobs, args.interval, sys.stderr if args.json else sys.stdout)
    if args.json:
        print_json(final[0] if len(final) == 1 and not getattr(args, "file", None) else {"jobs": final})
    else:
        for job in final:
            out(outcome(job))
    if not all(job["status"] == "succeeded" for job in final):
        return EXIT_FAILED
    if getattr(args, "pull", False):
        for item, job in zip(items, final, strict=True):
            docker_pull(job, item.source)
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    client = connect(args)
    if args.job:
        job = client.job(parse_job_id(args.job))
        print_json(job) if args.json else show_job(job)
        return EXIT_OK
    page = client.jobs(status=["active"], page_size=100)
    if args.json:
        print_json(page["results"])
    elif not page["results"]:
        out("No active jobs. (imagesync list shows the recent ones.)")
    else:
        print_table(page["results"])
    return EXIT_OK


def print_table(jobs: list[dict[str, Any]]) -> None:
    rows = [["ID", "KIND", "STATUS", "CREATED", "SOURCE", "DESTINATION"]]
    rows += [
        [str(j["id"]), j["kind"], j["status"], when(j["created_at"]), j["source"], j["destination"]]
        for j in jobs
    ]
    table(rows)


def cmd_list(args: argparse.Namespace) -> int:
    client = connect(args)
    page = client.jobs(
        status=args.status or None,
        kind=args.kind,
        namespace=args.namespace,
        search=args.search,
        all="true" if args.all else None,
        page_size=args.limit,
    )
    if args.json:
        print_json(page["results"])
    elif not page["results"]:
        out("No jobs.")
    else:
        print_table(page["results"])
        if page.get("count", 0) > len(page["results"]):
            # Past the server's count limit the count is a lower bound (count_exact: false).
            total = f"{page['count']}{'' if page.get('count_exact', True) else '+'}"
            out(f"({len(page['results'])} of {total}; --limit shows more)")
    return EXIT_OK


def cmd_cancel(args: argparse.Namespace) -> int:
    job = connect(args).cancel(parse_job_id(args.job))
    if args.json:
        print_json(job)
    elif job["status"] == "cancelled":
        out(f"Job #{job['id']} cancelled.")
    else:
        out(f"Cancel requested for job #{job['id']} ({job['status']}): its GitHub run is being cancelled.")
    return EXIT_OK


def cmd_retry(args: argparse.Namespace) -> int:
    client = connect(args)
    old = parse_job_id(args.job)
    job = client.retry(old)
    item = Item(f"#{old}", job["kind"], job["source"], "")
    return finish(client, args, [item], [job])


def cmd_delete(args: argparse.Namespace) -> int:
    job_id = parse_job_id(args.job)
    connect(args).delete(job_id)
    out(f"Deleted job #{job_id}.")
    return EXIT_OK


def cmd_namespaces(args: argparse.Namespace) -> int:
    namespaces = connect(args).namespaces()
    if args.json:
        print_json(namespaces)
    elif not namespaces:
        out("You may not push to any namespace yet; ask an administrator to add you to one.")
    else:
        rows = [["ID", "NAMESPACE", "REPOSITORIES", "KIND"]]
        rows += [
            [
                str(n["id"]),
                n["name"],
                f"{n['repositories_used']}/{n['repository_quota']}",
                n["registry_label"],
            ]
            for n in namespaces
        ]
        table(rows)
    return EXIT_OK


def cmd_whoami(args: argparse.Namespace) -> int:
    cfg = config.load()
    me = make_client(cfg.url, cfg.token, args).me()
    if args.json:
        print_json(me)
        return EXIT_OK
    token = me.get("token") or {}
    out(
        f"{me['email']} on {cfg.url}"
        + (f" (token {token['name']!r}, isk_{token['prefix']}_…)" if token else "")
    )
    return EXIT_OK


def cmd_login(args: argparse.Namespace) -> int:
    interactive = sys.stdin.isatty()
    url = args.url or os.environ.get("IMAGESYNC_URL") or ""
    if not url and interactive and not args.with_token:
        url = input("Portal URL (e.g. https://imagesync.example.com): ")
    if not url:
        raise UsageError("give the portal's address: imagesync login --url https://HOST")
    try:
        url = config.check_url(url)
    except config.ConfigError as exc:
        raise UsageError(str(exc)) from None
    if args.with_token:
        token = sys.stdin.read().strip()
    elif interactive:
        token = getpass.getpass(f"API token (create one at {url}/accounts/tokens/): ").strip()
    else:
        raise UsageError("no terminal to ask for the token: pipe it in with --with-token")
    if not TOKEN_RE.fullmatch(token):
        raise UsageError("that is not an imagesync API token (they look like isk_xxxxxxxx_… , 56 characters)")
    parts = urlsplit(url)
    if parts.scheme == "http" and parts.hostname not in ("localhost", "127.0.0.1", "::1"):
        err("warning: http:// sends the token unencrypted; use https:// outside your own machine")
    me = make_client(url, token, args).me()
    path = config.save(url, token)
    out(f"Logged in to {url} as {me['email']}. Saved to {path} (readable only by you).")
    return EXIT_OK


def cmd_logout(args: argparse.Namespace) -> int:
    path = config.remove()
    out(f"Removed {path}." if path else "Not logged in (no configuration file).")
    if os.environ.get("IMAGESYNC_TOKEN"):
        err("IMAGESYNC_TOKEN is still set in the environment")
    return EXIT_OK


# -- arguments ------------------------------------------------------------------------------


def positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError("give a number of seconds above 0 and at most 3600")
    return value


def limit(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 100:
        raise argparse.ArgumentTypeError("give a number from 1 to 100")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imagesync",
        description="Copy container images into your registry namespaces through the imagesync portal.",
        epilog="Configuration: IMAGESYNC_URL and IMAGESYNC_TOKEN, or the file imagesync login writes "
        f"({config.config_path()}). Exit codes: 0 ok, 1 failed, 2 bad input, 3 unreachable, 4 bad token.",
    )
    parser.add_argument("--version", action="version", version=f"imagesync {__version__}")
    parser.add_argument(
        "--timeout", type=positive, default=30.0, help="seconds to wait for each answer (default 30)"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--json", action="store_true", help="print the API's JSON (for scripts)")

    def waiting(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--wait", action="store_true", help="follow the job(s) until they end; exit 0 only on success"
        )
        sub.add_argument(
            "--interval", type=positive, default=3.0, help="seconds between checks with --wait (default 3)"
        )

    for kind, text in (("copy", "copy one tag"), ("sync", "sync every tag of a repository")):
        sub = commands.add_parser(
            kind, help=text, description=f"{text.capitalize()} into one of your namespaces."
        )
        sub.add_argument("source", nargs="?", metavar="SRC", help="e.g. nginx:1.27, ghcr.io/owner/app:v1")
        target = "DST" if kind == "copy" else "DST_SCOPE"
        sub.add_argument(
            "target",
            nargs="?",
            metavar=target,
            help=f"{DESTINATION_FORMS} (default: your namespace, same name and tag)",
        )
        sub.add_argument(
            "-f",
            "--file",
            metavar="FILE",
            help="one 'SRC [DST]' per line ('-' reads stdin): all are checked before anything is sent, "
            "then started in batches of 10",
        )
        sub.add_argument("-n", "--namespace", metavar="NS", help="namespace id, REGISTRY/NAMESPACE or name")
        sub.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
        sub.add_argument(
            "--on-clash",
            choices=["refuse", "rename", "keep"] if kind == "copy" else ["refuse", "keep"],
            help="when the image would land in a repository that holds another image's tags "
            "(bitnami/redis where library/redis is): refuse (default), "
            + ("rename (to the suggested free name) or keep (mix them)" if kind == "copy" else "or keep (mix them)"),
        )
        if kind == "copy":
            sub.add_argument(
                "--pull",
                action="store_true",
                help="then docker pull the copy and tag it with the source's name (implies --wait)",
            )
        else:
            sub.add_argument("--pull", action="store_true", help=argparse.SUPPRESS)  # refused with a reason
            sub.add_argument("--include", metavar="REGEX", help="only tags matching this regular expression")
            sub.add_argument("--exclude", metavar="REGEX", help="skip tags matching this regular expression")
        waiting(sub)
        common(sub)
        sub.set_defaults(handler=cmd_submit)

    sub = commands.add_parser("status", help="show a job (or your active jobs)")
    sub.add_argument("job", nargs="?", metavar="JOB")
    common(sub)
    sub.set_defaults(handler=cmd_status)

    sub = commands.add_parser("list", help="list your jobs, newest first")
    sub.add_argument(
        "--status",
        action="append",
        help="pending, running, succeeded, failed, …, active or finished (repeatable)",
    )
    sub.add_argument("--kind", choices=["copy", "sync"])
    sub.add_argument("--namespace", metavar="NS")
    sub.add_argument("--search", metavar="TEXT", help="part of the source or destination")
    sub.add_argument("--all", action="store_true", help="everyone's jobs (staff only)")
    sub.add_argument("--limit", type=limit, default=20, help="how many (1-100, default 20)")
    common(sub)
    sub.set_defaults(handler=cmd_list)

    for name, text, handler in (
        ("cancel", "cancel a job", cmd_cancel),
        ("delete", "delete a finished job", cmd_delete),
    ):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("job", metavar="JOB")
        common(sub)
        sub.set_defaults(handler=handler)

    sub = commands.add_parser("retry", help="start a failed or cancelled job again")
    sub.add_argument("job", metavar="JOB")
    waiting(sub)
    common(sub)
    sub.set_defaults(handler=cmd_retry)

    sub = commands.add_parser("namespaces", help="the namespaces you may push to, with their use")
    common(sub)
    sub.set_defaults(handler=cmd_namespaces)

    sub = commands.add_parser("whoami", help="who the token belongs to")
    common(sub)
    sub.set_defaults(handler=cmd_whoami)

    sub = commands.add_parser("login", help="save the portal's address and your token (file mode 0600)")
    sub.add_argument("--url", help="the portal's address, e.g. https://imagesync.example.com")
    sub.add_argument("--with-token", action="store_true", help="read the token from standard input")
    sub.set_defaults(handler=cmd_login)

    sub = commands.add_parser("logout", help="forget the saved address and token")
    sub.set_defaults(handler=cmd_logout)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except UsageError as exc:
        err(str(exc))
        return EXIT_USAGE
    except config.ConfigError as exc:
        err(str(exc))
        return EXIT_UNREACHABLE
    except Declined as exc:
        err(str(exc))
        return EXIT_FAILED
    except ApiError as exc:
        err(exc.message)
        return exc.exit_code
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
