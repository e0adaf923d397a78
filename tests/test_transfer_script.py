"""Tests of .github/scripts/imagesync_transfer.py, mostly against real local registries.

The e2e tests run the script as the workflow does (a subprocess, inputs in environment variables)
with Debian's skopeo, and check what really arrived at the destination registry.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.registries import (
    SKOPEO_BINARY,
    CountingProxy,
    Registry,
    build_image,
    build_index,
    get_manifest,
    list_tags,
    manifest_digest,
    push_image,
    unique_repo,
)

# The registry fixtures (source_registry, destination_registry, counting_proxy, make_proxy).
pytest_plugins = ("tests.registries",)

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / ".github" / "scripts" / "imagesync_transfer.py"
ALIYUN = "registry.cn-beijing.aliyuncs.com"

# In CI a missing skopeo must fail the run (make test installs it), not skip these tests.
needs_skopeo = pytest.mark.skipif(
    not os.access(SKOPEO_BINARY, os.X_OK) and not os.environ.get("CI"),
    reason="needs Debian's skopeo (apt-get install skopeo)",
)


def load_script_module():
    spec = importlib.util.spec_from_file_location("imagesync_transfer", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


transfer = load_script_module()


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str
    result: dict
    summary: str

    @property
    def errors(self) -> list[str]:
        return [line for line in self.stdout.splitlines() if line.startswith("::error")]

    def tags(self, key: str) -> list[str]:
        return sorted(entry["tag"] for entry in self.result[key])


def run_transfer(kind: str, env: dict[str, str], tmp_path: Path) -> Outcome:
    summary = tmp_path / f"summary-{os.urandom(4).hex()}.md"
    base = {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "TMPDIR") if key in os.environ}
    full_env = {**base, "GITHUB_STEP_SUMMARY": str(summary), **env}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), kind], env=full_env, capture_output=True, text=True, timeout=300
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith(transfer.RESULT_PREFIX)]
    assert len(lines) == 1, f"expected exactly one result line:\n{done.stdout}\n{done.stderr}"
    result = json.loads(lines[0][len(transfer.RESULT_PREFIX) :])
    return Outcome(
        done.returncode, done.stdout, done.stderr, result, summary.read_text() if summary.exists() else ""
    )


def registry_env(
    source: Registry | CountingProxy,
    destination: Registry | CountingProxy,
    credential: str | None,
    *insecure_extra: str,
) -> dict[str, str]:
    hosts = {source.host, destination.host, *insecure_extra}
    return {
        "IMAGESYNC_SOURCE": source.host,
        "IMAGESYNC_DESTINATION": destination.host,
        "IMAGESYNC_INSECURE_REGISTRIES": ",".join(sorted(hosts)),
        "IMAGESYNC_ALLOWED_DESTINATIONS": destination.host,
        "IMAGESYNC_SKOPEO": SKOPEO_BINARY,
        "DESTINATION_CREDENTIAL": credential or "",
    }


def copy_env(source, destination, credential, source_repo, destination_repo, **extra) -> dict[str, str]:
    env = registry_env(source, destination, credential)
    env.update(
        {
            "IMAGESYNC_SOURCE_REPO": source_repo,
            "IMAGESYNC_DESTINATION_REPO": destination_repo,
            "IMAGESYNC_REQUEST_ID": "req-123",
        }
    )
    env.update(extra)
    return env


def sync_env(source, destination, credential, source_repo, scope, **extra) -> dict[str, str]:
    env = registry_env(source, destination, credential)
    env.update(
        {
            "IMAGESYNC_SOURCE_REPO": source_repo,
            "IMAGESYNC_DESTINATION_SCOPE": scope,
            "IMAGESYNC_REQUEST_ID": "req-456",
        }
    )
    env.update(extra)
    return env


def write_fake_skopeo(directory: Path, log: Path, *, delegate: bool) -> Path:
    """A skopeo that records each call (argv and the auth files' modes), then runs the real one."""
    path = directory / "skopeo"
    path.write_text(
        textwrap.dedent(f"""\
        #!{sys.executable}
        import json, os, stat, sys
        record = {{"argv": sys.argv[1:], "authfiles": {{}}}}
        for i, arg in enumerate(sys.argv):
            if arg.endswith("authfile") and i + 1 < len(sys.argv):
                name = sys.argv[i + 1]
                record["authfiles"][name] = {{
                    "mode": stat.S_IMODE(os.stat(name).st_mode),
                    "dir_mode": stat.S_IMODE(os.stat(os.path.dirname(name)).st_mode),
                    "content": json.load(open(name)),
                }}
        with open({str(log)!r}, "a") as handle:
            handle.write(json.dumps(record) + "\\n")
        if {delegate!r}:
            os.execv({SKOPEO_BINARY!r}, [{SKOPEO_BINARY!r}] + sys.argv[1:])
        print("skopeo version 1.9.3")
    """)
    )
    path.chmod(0o755)
    return path


def read_calls(log: Path) -> list[dict]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


# --------------------------------------------------------------------------------------------
# Input validation (no registry needed)
# --------------------------------------------------------------------------------------------


def valid_copy_inputs() -> dict[str, str]:
    return {
        "IMAGESYNC_SOURCE": "docker.io",
        "IMAGESYNC_DESTINATION": ALIYUN,
        "IMAGESYNC_SOURCE_REPO": "nginx:1.27",
        "IMAGESYNC_DESTINATION_REPO": "team/nginx:1.27",
        "IMAGESYNC_REQUEST_ID": "0b7d4c1e-req",
        "IMAGESYNC_CREDENTIAL_NAME": "DESTINATION_CREDENTIAL",
        "DESTINATION_CREDENTIAL": "user:s3cr3t-pw",
    }


INJECTIONS = [
    ("IMAGESYNC_SOURCE_REPO", "nginx:1.27\nbusybox:latest"),
    ("IMAGESYNC_SOURCE_REPO", "nginx:1.27;rm -rf /"),
    ("IMAGESYNC_SOURCE_REPO", "nginx:1.27 busybox"),
    ("IMAGESYNC_SOURCE_REPO", "$(curl evil.example)"),
    ("IMAGESYNC_SOURCE_REPO", "--src-creds=a:b"),
    ("IMAGESYNC_SOURCE_REPO", "nginx:`id`"),
    ("IMAGESYNC_SOURCE_REPO", "nginx:1.27\n"),
    ("IMAGESYNC_SOURCE_REPO", "nginx:1.27\\x3bbusybox"),
    ("IMAGESYNC_SOURCE_REPO", "nginx:'1.27'"),
    ("IMAGESYNC_SOURCE_REPO", "NGINX:1.27"),
    ("IMAGESYNC_SOURCE_REPO", "ngınx:1.27"),
    ("IMAGESYNC_SOURCE_REPO", "ghcr.io/owner/app:1"),
    ("IMAGESYNC_SOURCE_REPO", "nginx:1.27@sha256:" + "a" * 64),
    ("IMAGESYNC_SOURCE_REPO", "nginx@sha256:" + "A" * 64),
    ("IMAGESYNC_DESTINATION_REPO", "team/nginx:1.27\nother/x:1"),
    ("IMAGESYNC_DESTINATION_REPO", "team/nginx:1.27;id"),
    ("IMAGESYNC_DESTINATION_REPO", "--dest-creds=x:y"),
    ("IMAGESYNC_DESTINATION_REPO", "team/nginx@sha256:" + "a" * 64),
    ("IMAGESYNC_DESTINATION_REPO", "team/nginx:$(id)"),
    ("IMAGESYNC_SOURCE", "docker.io;id"),
    ("IMAGESYNC_SOURCE", "docker.io/evil"),
    ("IMAGESYNC_SOURCE", "--src-tls-verify=false"),
    ("IMAGESYNC_SOURCE", "docker.io\n"),
    ("IMAGESYNC_DESTINATION", "evil.example.com"),
    ("IMAGESYNC_DESTINATION", f"{ALIYUN}:8443"),
    ("IMAGESYNC_DESTINATION", f"{ALIYUN}.evil.example"),
    ("IMAGESYNC_DESTINATION", f"{ALIYUN} "),
    ("IMAGESYNC_REQUEST_ID", "abc\n::set-output name=x::y"),
    ("IMAGESYNC_REQUEST_ID", "a b"),
    ("IMAGESYNC_CREDENTIAL_NAME", "GITHUB_TOKEN"),
    ("IMAGESYNC_CREDENTIAL_NAME", "X; echo"),
    ("DESTINATION_CREDENTIAL", ""),
    ("DESTINATION_CREDENTIAL", "no-colon"),
    ("DESTINATION_CREDENTIAL", "user:s3cr3t\n-pw"),
]


@pytest.mark.parametrize("name,value", INJECTIONS, ids=[f"{n}={v!r}" for n, v in INJECTIONS])
def test_hostile_copy_inputs_are_refused_before_skopeo_runs(tmp_path, name, value):
    calls = tmp_path / "calls.jsonl"
    env = valid_copy_inputs()
    env[name] = value
    env["IMAGESYNC_SKOPEO"] = str(write_fake_skopeo(tmp_path, calls, delegate=False))
    outcome = run_transfer("copy", env, tmp_path)
    assert outcome.returncode == transfer.EXIT_INVALID, outcome.stdout
    assert outcome.errors and "Invalid input" in outcome.errors[0]
    assert outcome.result["status"] == "failed"
    assert outcome.result["error"].startswith("invalid input:")
    assert read_calls(calls) == []  # skopeo never ran, not even --version
    assert "s3cr3t-pw" not in outcome.stdout  # the password is never echoed
    # The raw value must not reach the log unescaped: no line may start with a workflow command
    # other than our single ::error.
    assert [line for line in outcome.stdout.splitlines() if line.startswith("::")] == outcome.errors[:1]


SYNC_INJECTIONS = [
    ("IMAGESYNC_SOURCE_REPO", "nginx:1.27"),  # a sync takes a repository, not a tag
    ("IMAGESYNC_SOURCE_REPO", "nginx\nbusybox"),
    ("IMAGESYNC_DESTINATION_SCOPE", "team;id"),
    ("IMAGESYNC_DESTINATION_SCOPE", "team/../x"),
    ("IMAGESYNC_DESTINATION_SCOPE", "--all"),
    ("IMAGESYNC_DESTINATION_SCOPE", ""),
    ("IMAGESYNC_INCLUDE_TAGS", "(unclosed"),
]


@pytest.mark.parametrize("name,value", SYNC_INJECTIONS, ids=[f"{n}={v!r}" for n, v in SYNC_INJECTIONS])
def test_hostile_sync_inputs_are_refused_before_skopeo_runs(tmp_path, name, value):
    calls = tmp_path / "calls.jsonl"
    env = {
        "IMAGESYNC_SOURCE": "docker.io",
        "IMAGESYNC_DESTINATION": ALIYUN,
        "IMAGESYNC_SOURCE_REPO": "nginx",
        "IMAGESYNC_DESTINATION_SCOPE": "team",
        "DESTINATION_CREDENTIAL": "user:secret",
        "IMAGESYNC_SKOPEO": str(write_fake_skopeo(tmp_path, calls, delegate=False)),
    }
    env[name] = value
    outcome = run_transfer("sync", env, tmp_path)
    assert outcome.returncode == transfer.EXIT_INVALID, outcome.stdout
    assert outcome.errors
    assert read_calls(calls) == []


def test_usage_error_without_a_mode(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True)
    assert done.returncode == transfer.EXIT_INVALID
    assert "usage" in done.stderr


@pytest.mark.parametrize(
    "source,repo,expected",
    [
        ("docker.io", "nginx:1.27", ("docker.io", "library/nginx", "1.27")),
        ("Docker.IO", "bitnami/redis:7.2", ("docker.io", "bitnami/redis", "7.2")),
        ("index.docker.io", "nginx", ("docker.io", "library/nginx", "latest")),
        ("ghcr.io", "owner/app:v1.0.0-rc.1", ("ghcr.io", "owner/app", "v1.0.0-rc.1")),
        ("quay.io", "a/b__c/d-e---f:_x", ("quay.io", "a/b__c/d-e---f", "_x")),
        ("localhost:5000", "x:1", ("localhost:5000", "x", "1")),
        ("docker.io", "nginx@sha256:" + "b" * 64, ("docker.io", "library/nginx", "sha256:" + "b" * 64)),
    ],
)
def test_reference_normalisation(source, repo, expected):
    env = {
        **valid_copy_inputs(),
        "IMAGESYNC_SOURCE": source,
        "IMAGESYNC_SOURCE_REPO": repo,
        "IMAGESYNC_DESTINATION_REPO": "team/x:1",
    }
    settings = transfer.Settings("copy", env)
    assert (settings.source_host, settings.source_repo, settings.source_ref) == expected


def test_destination_tag_defaults_to_the_source_tag():
    env = {**valid_copy_inputs(), "IMAGESYNC_DESTINATION_REPO": "team/nginx"}
    assert transfer.Settings("copy", env).destination_tag == "1.27"


@pytest.mark.parametrize(
    "tag,ok",
    [
        ("latest", True),
        ("1.27.0-alpine", True),
        ("_x", True),
        ("a" * 128, True),
        ("a" * 129, False),
        (".hidden", False),
        ("-x", False),
        ("1.27\n", False),
        ("ä", False),
        ("", False),
    ],
)
def test_tag_grammar(tag, ok):
    assert bool(transfer.TAG_RE.fullmatch(tag)) is ok


@pytest.mark.parametrize(
    "host,ok",
    [
        ("registry.cn-beijing.aliyuncs.com", True),
        ("registry-vpc.cn-hangzhou.aliyuncs.com", True),
        ("registry-intl.ap-southeast-1.aliyuncs.com", True),
        ("crpi-abc123.cn-shanghai.personal.cr.aliyuncs.com", True),
        ("crpi-abc123-vpc.cn-shanghai.personal.cr.aliyuncs.com", True),
        ("myinst-registry.cn-shenzhen.cr.aliyuncs.com", True),
        ("evil.example.com", False),
        ("registry.cn-beijing.aliyuncs.com.evil.example", False),
        ("bucket.oss-cn-beijing.aliyuncs.com", False),
        ("registry.cn-beijing.aliyuncs.com:444", False),
    ],
)
def test_destination_allow_list(host, ok):
    assert transfer.destination_allowed(host, set()) is ok


def test_challenge_and_ratelimit_parsing():
    scheme, params = transfer.parse_challenge(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/nginx:pull"'
    )
    assert scheme == "bearer"
    assert params == {
        "realm": "https://auth.docker.io/token",
        "service": "registry.docker.io",
        "scope": "repository:library/nginx:pull",
    }
    assert transfer.parse_challenge('Basic realm="x"') == ("basic", {"realm": "x"})
    assert transfer.parse_ratelimit("100;w=21600") == 100
    assert transfer.parse_ratelimit("0;w=21600") == 0
    assert transfer.parse_ratelimit(None) is None
    assert transfer.parse_ratelimit("garbage") is None


def test_markdown_summary_escapes_untrusted_text():
    result = {
        "kind": "sync",
        "status": "failed",
        "source": "docker.io/library/x",
        "source_reference": None,
        "destination": f"{ALIYUN}/team/x",
        "request_id": "r1",
        "tags_found": 2,
        "tags_selected": 2,
        "error": None,
        "stopped": None,
        "not_attempted": [],
        "copied": [{"tag": "1", "digest": "sha256:" + "c" * 64}],
        "skipped": [],
        "failed": [{"tag": "2", "reason": "bad | <script>alert(1)</script> `x`\nnext"}],
    }
    text = transfer.markdown_summary(result)
    assert "<script>" not in text and "&lt;script&gt;" in text
    row = [line for line in text.splitlines() if line.startswith("| 2 |")][0]
    assert row.count("|") == 4  # the reason's pipe does not split the table
    assert "`" not in row


# --------------------------------------------------------------------------------------------
# Copy, against real registries
# --------------------------------------------------------------------------------------------


@pytest.mark.e2e
@needs_skopeo
def test_copy_one_tag_arrives_with_the_same_digest(
    tmp_path, source_registry, destination_registry, counting_proxy
):
    repo = unique_repo("library")
    digest = push_image(source_registry, repo, "1.0", build_image(repo))
    env = copy_env(
        counting_proxy, destination_registry, destination_registry.credential, f"{repo}:1.0", "team/app:1.0"
    )

    first = run_transfer("copy", env, tmp_path)
    assert first.returncode == 0, first.stdout
    assert manifest_digest(destination_registry, "team/app", "1.0") == digest
    result = first.result
    assert result["status"] == "succeeded"
    assert result["kind"] == "copy" and result["request_id"] == "req-123"
    assert result["source"] == f"{counting_proxy.host}/{repo}"
    assert result["source_reference"] == "1.0"
    assert result["destination"] == f"{destination_registry.host}/team/app"
    assert result["copied"] == [{"tag": "1.0", "digest": digest}]
    assert result["skipped"] == [] and result["failed"] == []
    assert result["skopeo_version"].startswith("1.")
    assert "| 1.0 | copied |" in first.summary and digest in first.summary

    # Copying again finds the same digest by HEAD and pulls nothing.
    counting_proxy.reset()
    second = run_transfer("copy", env, tmp_path)
    assert second.returncode == 0, second.stdout
    assert second.result["copied"] == []
    assert second.result["skipped"] == [{"tag": "1.0", "digest": digest}]
    assert counting_proxy.manifest_requests("GET") == []


@pytest.mark.e2e
@needs_skopeo
def test_copy_by_digest(tmp_path, source_registry, destination_registry):
    repo = unique_repo("library")
    digest = push_image(source_registry, repo, "moving", build_image(repo))
    env = copy_env(
        source_registry,
        destination_registry,
        destination_registry.credential,
        f"{repo}@{digest}",
        "team/pinned:v1",
    )
    outcome = run_transfer("copy", env, tmp_path)
    assert outcome.returncode == 0, outcome.stdout
    assert outcome.result["source_reference"] == digest
    assert manifest_digest(destination_registry, "team/pinned", "v1") == digest


@pytest.mark.e2e
@needs_skopeo
def test_copy_keeps_every_platform_of_an_index(tmp_path, source_registry, destination_registry):
    repo = unique_repo("library")
    index = build_index(repo)
    digest = push_image(source_registry, repo, "multi", index)
    dest_repo = unique_repo("team")
    env = copy_env(
        source_registry,
        destination_registry,
        destination_registry.credential,
        f"{repo}:multi",
        f"{dest_repo}:multi",
    )
    outcome = run_transfer("copy", env, tmp_path)
    assert outcome.returncode == 0, outcome.stdout
    assert manifest_digest(destination_registry, dest_repo, "multi") == digest
    media_type, document = get_manifest(destination_registry, dest_repo, "multi")
    assert media_type == "application/vnd.oci.image.index.v1+json"
    platforms = sorted(m["platform"]["architecture"] for m in document["manifests"])
    assert platforms == ["amd64", "arm64"]
    for child in index.children:
        assert manifest_digest(destination_registry, dest_repo, child.digest) == child.digest


@pytest.mark.e2e
@needs_skopeo
def test_copy_of_a_missing_source_fails_clearly(tmp_path, source_registry, destination_registry):
    env = copy_env(
        source_registry,
        destination_registry,
        destination_registry.credential,
        f"{unique_repo('library')}:nope",
        "team/none:1",
    )
    outcome = run_transfer("copy", env, tmp_path)
    assert outcome.returncode == transfer.EXIT_FAILED
    assert outcome.result["failed"][0]["tag"] == "1"
    assert "not found" in outcome.result["failed"][0]["reason"]


@pytest.mark.e2e
@needs_skopeo
def test_wrong_destination_password_is_reported_as_authentication_failure(
    tmp_path, source_registry, destination_registry
):
    repo = unique_repo("library")
    push_image(source_registry, repo, "1.0", build_image(repo))
    dest_repo = unique_repo("team")
    env = copy_env(
        source_registry,
        destination_registry,
        f"{destination_registry.username}:wrong-password",
        f"{repo}:1.0",
        f"{dest_repo}:1.0",
    )
    outcome = run_transfer("copy", env, tmp_path)
    assert outcome.returncode == transfer.EXIT_FAILED
    assert outcome.result["status"] == "failed"
    message = outcome.result["error"]
    assert "refused the credentials" in message and "unauthorized" in message
    assert "fixed password" in message
    assert any("Authentication failed" in line for line in outcome.errors)
    assert "wrong-password" not in outcome.stdout
    assert list_tags(destination_registry, dest_repo) == []


@pytest.mark.e2e
@needs_skopeo
def test_password_never_on_a_command_line_and_auth_files_are_private(
    tmp_path, source_registry, destination_registry
):
    repo = unique_repo("library")
    digest = push_image(source_registry, repo, "1.0", build_image(repo))
    calls = tmp_path / "calls.jsonl"
    env = copy_env(
        source_registry,
        destination_registry,
        destination_registry.credential,
        f"{repo}:1.0",
        f"{unique_repo('team')}:1.0",
        IMAGESYNC_SKOPEO=str(write_fake_skopeo(tmp_path, calls, delegate=True)),
        GITHUB_ACTIONS="true",
    )
    outcome = run_transfer("copy", env, tmp_path)
    assert outcome.returncode == 0, outcome.stdout
    assert outcome.result["copied"][0]["digest"] == digest
    recorded = read_calls(calls)
    copy_calls = [c for c in recorded if c["argv"][:1] == ["copy"]]
    assert len(copy_calls) == 1
    password = destination_registry.password
    for call in recorded:
        assert not any(password in arg for arg in call["argv"])
        assert not any(arg.startswith(("--creds", "--src-creds", "--dest-creds")) for arg in call["argv"])
    authfiles = copy_calls[0]["authfiles"]
    assert len(authfiles) == 1
    ((path, info),) = authfiles.items()
    assert info["mode"] == 0o600 and info["dir_mode"] == 0o700
    assert list(info["content"]["auths"]) == [destination_registry.host]
    assert "--src-no-creds" in copy_calls[0]["argv"]
    assert not Path(path).exists()  # removed after the run
    # GitHub masks the whole secret; the password part is masked explicitly.
    assert f"::add-mask::{password}" in outcome.stdout.splitlines()


# --------------------------------------------------------------------------------------------
# Sync, against real registries
# --------------------------------------------------------------------------------------------


@pytest.mark.e2e
@needs_skopeo
def test_sync_copies_then_skips_without_pulling(
    tmp_path, source_registry, destination_registry, counting_proxy
):
    repo = unique_repo("library")
    digests = {
        "1.0": push_image(source_registry, repo, "1.0", build_image(repo + "a")),
        "1.1": push_image(source_registry, repo, "1.1", build_image(repo + "b")),
        "multi": push_image(source_registry, repo, "multi", build_index(repo + "c")),
    }
    scope = f"team{os.urandom(3).hex()}"
    dest_repo = f"{scope}/{repo.rsplit('/', 1)[1]}"
    env = sync_env(counting_proxy, destination_registry, destination_registry.credential, repo, scope)

    first = run_transfer("sync", env, tmp_path)
    assert first.returncode == 0, first.stdout
    assert first.result["status"] == "succeeded"
    assert first.result["destination"] == f"{destination_registry.host}/{dest_repo}"
    assert {e["tag"]: e["digest"] for e in first.result["copied"]} == digests
    assert first.result["tags_found"] == 3 and first.result["tags_selected"] == 3
    for tag, digest in digests.items():
        assert manifest_digest(destination_registry, dest_repo, tag) == digest

    counting_proxy.reset()
    second = run_transfer("sync", env, tmp_path)
    assert second.returncode == 0, second.stdout
    assert second.result["copied"] == []
    assert {e["tag"]: e["digest"] for e in second.result["skipped"]} == digests
    assert counting_proxy.manifest_requests("GET") == []
    assert len(counting_proxy.manifest_requests("HEAD")) == 3

    # A tag that moved upstream is copied again; the others stay untouched.
    moved = push_image(source_registry, repo, "1.1", build_image(repo + "b2"))
    third = run_transfer("sync", env, tmp_path)
    assert third.returncode == 0, third.stdout
    assert third.result["copied"] == [{"tag": "1.1", "digest": moved}]
    assert third.tags("skipped") == ["1.0", "multi"]
    assert manifest_digest(destination_registry, dest_repo, "1.1") == moved


@pytest.mark.e2e
@needs_skopeo
def test_sync_include_and_exclude_filters(tmp_path, source_registry, destination_registry):
    repo = unique_repo("library")
    for tag in ("1.0", "1.1", "1.1-alpine", "2.0", "latest"):
        push_image(source_registry, repo, tag, build_image(repo + tag))
    scope = f"team{os.urandom(3).hex()}"
    env = sync_env(
        source_registry,
        destination_registry,
        destination_registry.credential,
        repo,
        scope,
        IMAGESYNC_INCLUDE_TAGS=r"^1\.",
        IMAGESYNC_EXCLUDE_TAGS="alpine",
    )
    outcome = run_transfer("sync", env, tmp_path)
    assert outcome.returncode == 0, outcome.stdout
    assert outcome.tags("copied") == ["1.0", "1.1"]
    assert outcome.result["tags_found"] == 5 and outcome.result["tags_selected"] == 2
    assert list_tags(destination_registry, f"{scope}/{repo.rsplit('/', 1)[1]}") == ["1.0", "1.1"]


@pytest.mark.e2e
@needs_skopeo
def test_sync_keeps_going_past_a_broken_tag(tmp_path, source_registry, destination_registry):
    repo = unique_repo("library")
    push_image(source_registry, repo, "a", build_image(repo + "a"))
    broken = build_image(repo + "broken")
    push_image(source_registry, repo, "b", broken)
    push_image(source_registry, repo, "c", build_image(repo + "c"))
    # Remove the layer's bytes from the source's storage: its manifest still resolves (so the
    # HEAD finds it), but skopeo cannot read the blob, a real copy failure.
    source_registry.blob_data_path(broken.blobs[1].digest).unlink()
    scope = f"team{os.urandom(3).hex()}"
    env = sync_env(source_registry, destination_registry, destination_registry.credential, repo, scope)
    outcome = run_transfer("sync", env, tmp_path)
    assert outcome.returncode == transfer.EXIT_FAILED
    assert outcome.result["status"] == "failed"
    assert outcome.tags("copied") == ["a", "c"]
    assert [f["tag"] for f in outcome.result["failed"]] == ["b"]
    assert "blob" in outcome.result["failed"][0]["reason"]
    assert "| b | failed |" in outcome.summary
    assert list_tags(destination_registry, f"{scope}/{repo.rsplit('/', 1)[1]}") == ["a", "c"]


@pytest.mark.e2e
@needs_skopeo
def test_sync_stops_when_the_pull_limit_is_used_up(
    tmp_path, source_registry, destination_registry, counting_proxy
):
    repo = unique_repo("library")
    scope = f"team{os.urandom(3).hex()}"
    env = sync_env(counting_proxy, destination_registry, destination_registry.credential, repo, scope)
    push_image(source_registry, repo, "0", build_image(repo + "0"))
    assert run_transfer("sync", env, tmp_path).returncode == 0
    for tag in ("1", "2", "3"):
        push_image(source_registry, repo, tag, build_image(repo + tag))
    counting_proxy.ratelimit_remaining = 0
    counting_proxy.reset()
    outcome = run_transfer("sync", env, tmp_path)
    assert outcome.returncode == transfer.EXIT_STOPPED, outcome.stdout
    assert outcome.result["status"] == "stopped"
    assert outcome.result["copied"] == [] and outcome.result["failed"] == []
    # HEADs cost nothing: the tag already there is still reported as up to date.
    assert outcome.tags("skipped") == ["0"]
    assert outcome.result["not_attempted"] == ["1", "2", "3"]
    assert "pull limit" in outcome.result["stopped"]
    assert outcome.result["ratelimit"] == {"limit": 100, "remaining": 0}
    assert counting_proxy.manifest_requests("GET") == []
    assert any("Not attempted (3): 1, 2, 3" in line for line in outcome.errors)


@pytest.mark.e2e
@needs_skopeo
def test_sync_stops_midway_when_the_pull_limit_runs_out(
    tmp_path, source_registry, destination_registry, counting_proxy
):
    repo = unique_repo("library")
    for tag in ("1", "2", "3"):
        push_image(source_registry, repo, tag, build_image(repo + tag))
    counting_proxy.ratelimit_remaining = 1  # enough for one single-platform image
    scope = f"team{os.urandom(3).hex()}"
    env = sync_env(counting_proxy, destination_registry, destination_registry.credential, repo, scope)
    outcome = run_transfer("sync", env, tmp_path)
    assert outcome.returncode == transfer.EXIT_STOPPED, outcome.stdout
    assert outcome.tags("copied") == ["1"]
    assert outcome.result["not_attempted"] == ["2", "3"]
    assert len(counting_proxy.manifest_requests("GET")) == 1


@pytest.mark.e2e
@needs_skopeo
def test_token_auth_like_docker_hub_and_acr(tmp_path, source_registry, destination_registry, make_proxy):
    """Source and destination both demand bearer tokens; the destination's token needs a login."""
    repo = unique_repo("library")
    digest = push_image(source_registry, repo, "1.0", build_index(repo))
    hub = make_proxy(source_registry, bearer=True)
    acr = make_proxy(destination_registry, bearer=True, token_credential=destination_registry.credential)
    dest_repo = unique_repo("team")
    env = copy_env(hub, acr, destination_registry.credential, f"{repo}:1.0", f"{dest_repo}:1.0")
    outcome = run_transfer("copy", env, tmp_path)
    assert outcome.returncode == 0, outcome.stdout
    assert manifest_digest(destination_registry, dest_repo, "1.0") == digest
    assert hub.token_requests and acr.token_requests
    # The source is not Docker Hub: no credential may reach it, from the script or from skopeo.
    assert {scheme for _, scheme in hub.authorizations} <= {"", "Bearer"}

    bad = copy_env(hub, acr, f"{destination_registry.username}:wrong", f"{repo}:1.0", f"{dest_repo}:2.0")
    refused = run_transfer("copy", bad, tmp_path)
    assert refused.returncode == transfer.EXIT_FAILED
    assert "refused the credentials" in refused.result["error"]
    assert manifest_digest(destination_registry, dest_repo, "2.0") is None


@pytest.mark.e2e
@needs_skopeo
def test_source_credential_is_not_sent_to_a_user_chosen_source(
    tmp_path, source_registry, destination_registry, counting_proxy
):
    repo = unique_repo("library")
    push_image(source_registry, repo, "1.0", build_image(repo))
    env = copy_env(
        counting_proxy,
        destination_registry,
        destination_registry.credential,
        f"{repo}:1.0",
        f"{unique_repo('team')}:1.0",
        SOURCE_CREDENTIAL="hubuser:hubpass",
    )
    outcome = run_transfer("copy", env, tmp_path)
    assert outcome.returncode == 0, outcome.stdout
    assert {scheme for _, scheme in counting_proxy.authorizations} == {""}


@pytest.mark.e2e
@needs_skopeo
def test_a_429_during_a_copy_stops_the_rest(tmp_path, source_registry, destination_registry, counting_proxy):
    repo = unique_repo("library")
    push_image(source_registry, repo, "a", build_index(repo + "a"))  # 3 manifest GETs to copy
    push_image(source_registry, repo, "b", build_image(repo + "b"))
    counting_proxy.ratelimit_remaining = 2
    scope = f"team{os.urandom(3).hex()}"
    env = sync_env(counting_proxy, destination_registry, destination_registry.credential, repo, scope)
    outcome = run_transfer("sync", env, tmp_path)
    assert outcome.returncode == transfer.EXIT_FAILED, outcome.stdout
    assert [f["tag"] for f in outcome.result["failed"]] == ["a"]
    assert "429" in outcome.result["stopped"]
    assert outcome.result["not_attempted"] == ["b"]


@pytest.mark.e2e
@needs_skopeo
def test_plain_http_only_for_listed_hosts(tmp_path, source_registry, destination_registry):
    repo = unique_repo("library")
    push_image(source_registry, repo, "1.0", build_image(repo))
    dest_repo = unique_repo("team")
    env = copy_env(
        source_registry,
        destination_registry,
        destination_registry.credential,
        f"{repo}:1.0",
        f"{dest_repo}:1.0",
        IMAGESYNC_INSECURE_REGISTRIES=destination_registry.host,
    )
    outcome = run_transfer("copy", env, tmp_path)
    # The source speaks plain http and is not listed: the script insists on TLS and fails.
    assert outcome.returncode == transfer.EXIT_FAILED
    assert "did not answer" in outcome.result["failed"][0]["reason"]
    assert manifest_digest(destination_registry, dest_repo, "1.0") is None
