"""Figure (e) of issue 3 §6: re-sync of an unchanged 20-tag repository.

Two real registries on loopback (Debian's docker-registry, via tests/registries.py): a plain
source standing in for Docker Hub and an htpasswd destination standing in for ACR. A
``CountingProxy`` sits in front of each and adds a fixed delay to every request (a stand-in for
the network between a GitHub runner and Docker Hub / Aliyun), and records every request.

The repository is synced once (not measured), then synced again, unchanged, by
- this design: ``.github/scripts/imagesync_transfer.py sync`` exactly as sync.yml runs it
  (skopeo list-tags, then a HEAD per tag on each side, skopeo copy only for what differs);
- the seed's action: ``skopeo sync --all --src docker --dest docker SOURCE/REPO DEST/NAMESPACE``.
A manifest GET from the source is what Docker Hub counts as a pull; a HEAD is not.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench.stack import ROOT
from tests.registries import (
    SKOPEO_BINARY,
    CountingProxy,
    Registry,
    build_image,
    list_tags,
    push_image,
    start_registry,
)

SCRIPT = ROOT / ".github" / "scripts" / "imagesync_transfer.py"
RESULT_PREFIX = "IMAGESYNC-RESULT "
REPO = "library/benchimg"
SCOPE = "team"


def classify(requests: list[tuple[str, str]]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for method, path in requests:
        bare = path.split("?", 1)[0]
        counts["total"] += 1
        if "/manifests/" in bare:
            counts[f"manifest {method}"] += 1
        elif "/blobs/" in bare:
            counts["blob"] += 1
        elif bare.endswith("/tags/list"):
            counts["tags/list"] += 1
        elif bare.rstrip("/") == "/v2":
            counts["/v2/ ping"] += 1
        else:
            counts[f"other {method}"] += 1
    return counts


@dataclass
class ToolResult:
    tool: str
    walls: list[float] = field(default_factory=list)
    source: list[Counter[str]] = field(default_factory=list)
    destination: list[Counter[str]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def wall(self) -> float:
        return statistics.median(self.walls) if self.walls else float("nan")

    def counts(self, side: str, key: str) -> str:
        """The figure of the first repetition, with the range if later ones differed."""
        values = [c[key] for c in (self.source if side == "source" else self.destination)]
        if not values:
            return "-"
        low, high = min(values), max(values)
        return str(values[0]) if low == high else f"{values[0]} ({low}–{high})"


@dataclass
class RegistryResults:
    tags: int
    delay: float
    reps: int
    first_sync_wall: float = 0.0
    tools: dict[str, ToolResult] = field(default_factory=dict)
    skopeo_version: str = ""


def _base_env() -> dict[str, str]:
    return {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "TMPDIR") if key in os.environ}


def _transfer(env: dict[str, str]) -> tuple[float, dict, str]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "sync"], env={**_base_env(), **env},
        capture_output=True, text=True, timeout=600,
    )
    wall = time.monotonic() - started
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    result = json.loads(lines[-1][len(RESULT_PREFIX):]) if lines else {}
    return wall, result, done.stdout + done.stderr


def _skopeo_sync(source: CountingProxy, destination: CountingProxy, authfile: Path) -> tuple[float, int, str]:
    argv = [
        SKOPEO_BINARY, "sync", "--all", "--src", "docker", "--dest", "docker",
        "--src-tls-verify=false", "--dest-tls-verify=false", "--src-no-creds",
        "--dest-authfile", str(authfile),
        f"{source.host}/{REPO}", f"{destination.host}/{SCOPE}",
    ]
    started = time.monotonic()
    done = subprocess.run(argv, env=_base_env(), capture_output=True, text=True, timeout=600)
    return time.monotonic() - started, done.returncode, done.stdout + done.stderr


def run_registry_bench(
    workdir: Path, *, tags: int = 20, delay: float = 0.1, reps: int = 3, log=print
) -> RegistryResults:
    results = RegistryResults(tags=tags, delay=delay, reps=reps)
    results.skopeo_version = subprocess.run(
        [SKOPEO_BINARY, "--version"], capture_output=True, text=True, timeout=60
    ).stdout.strip()
    registries: list[Registry] = []
    proxies: list[CountingProxy] = []
    try:
        source = start_registry(workdir / "source")
        registries.append(source)
        destination = start_registry(
            workdir / "destination", username="acr-user", password="fixed-" + secrets.token_hex(8)
        )
        registries.append(destination)
        for index in range(tags):
            push_image(source, REPO, f"1.{index}", build_image(f"bench-{index}"))
        source_proxy = CountingProxy(source)
        proxies.append(source_proxy)
        destination_proxy = CountingProxy(destination)
        proxies.append(destination_proxy)
        env = {
            "IMAGESYNC_SOURCE": source_proxy.host,
            "IMAGESYNC_DESTINATION": destination_proxy.host,
            "IMAGESYNC_SOURCE_REPO": REPO,
            "IMAGESYNC_DESTINATION_SCOPE": SCOPE,
            "IMAGESYNC_REQUEST_ID": "bench-resync",
            "IMAGESYNC_INSECURE_REGISTRIES": f"{source_proxy.host},{destination_proxy.host}",
            "IMAGESYNC_ALLOWED_DESTINATIONS": destination_proxy.host,
            "IMAGESYNC_SKOPEO": SKOPEO_BINARY,
            "DESTINATION_CREDENTIAL": destination.credential or "",
        }
        authfile = workdir / "skopeo-dest-auth.json"
        token = base64.b64encode((destination.credential or "").encode()).decode()
        authfile.write_text(json.dumps({"auths": {destination_proxy.host: {"auth": token}}}))
        authfile.chmod(0o600)

        # The first sync fills the destination; only the second, of an unchanged repository, counts.
        wall, first, output = _transfer(env)
        results.first_sync_wall = wall
        if len(first.get("copied") or []) != tags:
            raise RuntimeError(f"the first sync did not copy {tags} tags:\n{output[-3000:]}")
        log(f"  first sync: {tags} tags copied in {wall:.1f} s (no delay)")
        copied = list_tags(destination, f"{SCOPE}/{REPO.rsplit('/', 1)[-1]}")
        if len(copied) != tags:
            raise RuntimeError(f"the destination holds {len(copied)} tags, not {tags}")

        source_proxy.delay = destination_proxy.delay = delay
        ours = results.tools.setdefault("imagesync", ToolResult("imagesync_transfer.py sync"))
        theirs = results.tools.setdefault("skopeo", ToolResult("skopeo sync --all"))
        for rep in range(reps):
            # Alternate which goes first, so neither always runs on a warmer machine.
            order = ("imagesync", "skopeo") if rep % 2 == 0 else ("skopeo", "imagesync")
            for name in order:
                source_proxy.reset()
                destination_proxy.reset()
                if name == "imagesync":
                    wall, outcome, output = _transfer(env)
                    skipped = len(outcome.get("skipped") or [])
                    if skipped != tags or outcome.get("copied"):
                        ours.failures.append(
                            f"rep {rep}: {skipped} skipped, {len(outcome.get('copied') or [])} copied"
                        )
                    tool = ours
                else:
                    wall, code, output = _skopeo_sync(source_proxy, destination_proxy, authfile)
                    if code != 0:
                        theirs.failures.append(f"rep {rep}: exit {code}: {output[-500:]}")
                    tool = theirs
                tool.walls.append(wall)
                tool.source.append(classify(list(source_proxy.requests)))
                tool.destination.append(classify(list(destination_proxy.requests)))
                log(
                    f"  {tool.tool} (rep {rep + 1}): {wall:.2f} s, source {dict(tool.source[-1])}, "
                    f"destination {dict(tool.destination[-1])}"
                )
    finally:
        for proxy in proxies:
            proxy.close()
        for registry in registries:
            registry.stop()
    return results
