"""Run the emulator from the shell, for an offline demo or a benchmark.

    python -m emulator --port 0 --repo-root . --repository acme/imagesync --token T \
        --webhook-url http://127.0.0.1:8000/github/webhook --webhook-secret S \
        --secret ACR_TEAM=password --secret DOCKERHUB_TOKEN   # value taken from the environment

The first line printed is `EMULATOR_URL=<api base url>`; the process serves until SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from emulator.core import GitHubEmulator
from emulator.records import CONCLUSIONS, DryPlan


def _pairs(values: list[str], what: str, *, from_env: bool) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep:
            if not from_env or name not in os.environ:
                raise SystemExit(
                    f"--{what} {name}: give NAME=VALUE" + (" or export NAME" if from_env else "")
                )
            value = os.environ[name]
        pairs[name] = value
    return pairs


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m emulator", description="Loopback GitHub API emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--repo-root", default=".", help="where .github/workflows/ is read from")
    parser.add_argument("--repository", default="acme/imagesync", help="owner/repo")
    parser.add_argument("--token", required=True, help="the token clients must send")
    parser.add_argument("--webhook-url")
    parser.add_argument("--webhook-secret")
    parser.add_argument("--webhook-content-type", choices=["json", "form"], default="json")
    parser.add_argument(
        "--secret",
        action="append",
        default=[],
        metavar="NAME[=VALUE]",
        help="repository secret; without =VALUE it is read from the environment",
    )
    parser.add_argument("--var", action="append", default=[], metavar="NAME=VALUE", help="a `vars` value")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for every step (e.g. IMAGESYNC_INSECURE_REGISTRIES)",
    )
    parser.add_argument(
        "--ref", action="append", default=[], help="a branch or refs/... the dispatch accepts"
    )
    parser.add_argument("--queue-delay", type=float, default=1.0)
    parser.add_argument("--max-concurrent-runs", type=int, default=4)
    parser.add_argument("--dry", choices=sorted(CONCLUSIONS), help="do not execute steps; end runs like this")
    parser.add_argument("--dry-duration", type=float, default=0.0)
    parser.add_argument("--api-prefix", default="", help="e.g. /api/v3 to look like GitHub Enterprise Server")
    parser.add_argument("--html-url", default="https://github.com")
    parser.add_argument("--force-204", action="store_true", help="dispatch answers 204 (older GHES)")
    parser.add_argument("--rate-limit", type=int, default=5000)
    parser.add_argument("--control", action="store_true", help="serve /_emulator/faults and /_emulator/stats")
    parser.add_argument("--copy-workspace", action="store_true", help="each job works on a copy of the repo")
    parser.add_argument("--verbose", "-v", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(name)s %(message)s"
    )
    emulator = GitHubEmulator(
        repo_root=args.repo_root,
        repository=args.repository,
        token=args.token,
        host=args.host,
        port=args.port,
        secrets=_pairs(args.secret, "secret", from_env=True),
        variables=_pairs(args.var, "var", from_env=False),
        extra_env=_pairs(args.env, "env", from_env=False),
        refs=args.ref or ("main",),
        webhook_url=args.webhook_url,
        webhook_secret=args.webhook_secret,
        webhook_content_type=args.webhook_content_type,
        queue_delay=args.queue_delay,
        max_concurrent_runs=args.max_concurrent_runs,
        dry=DryPlan(args.dry, args.dry_duration) if args.dry else None,
        api_prefix=args.api_prefix,
        html_url=args.html_url,
        force_204=args.force_204,
        rate_limit=args.rate_limit,
        control=args.control,
        copy_workspace=args.copy_workspace,
    )
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    emulator.start()
    print(f"EMULATOR_URL={emulator.url}", flush=True)
    print(
        f"serving {emulator.repository} from {emulator.repo_root} (Ctrl-C to stop)",
        file=sys.stderr,
        flush=True,
    )
    stop.wait()
    emulator.close(grace=0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
