"""Real container registries on loopback, for end-to-end tests.

Starts Debian's ``docker-registry`` (distribution 2.8): a plain "source" registry that stands in for
Docker Hub and a "destination" registry with htpasswd auth that stands in for Aliyun ACR. Images are
built and pushed by the tests themselves over the registry HTTP API, so no Docker engine is needed.

A ``CountingProxy`` can sit in front of a registry to record every request, to demand Docker Hub
style bearer tokens, to send Docker Hub's ``ratelimit-*`` headers and to break chosen paths.

Use from a test module::

    from tests.registries import source_registry, destination_registry, counting_proxy  # noqa: F401

(importing the fixture functions is what makes pytest see them in that module).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import http.client
import http.server
import io
import json
import os
import secrets
import shutil
import socket
import subprocess
import tarfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REGISTRY_BINARY = "/usr/bin/docker-registry"
SKOPEO_BINARY = "/usr/bin/skopeo"

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
# Without these the registry may answer with a converted manifest whose digest is not the stored one.
MANIFEST_ACCEPT = ", ".join([OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST])

READY_TIMEOUT = 20.0


def missing(reason: str) -> None:
    """A tool the end-to-end tests need is absent: skip on a laptop, fail in CI, where
    `make test` installs everything and a skip would hide a broken install step."""
    if os.environ.get("CI"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    """A loopback port that was free a moment ago (the registry binds it right after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def unique_repo(prefix: str = "test") -> str:
    """A fresh repository name, so tests sharing a session registry never see each other's tags."""
    return f"{prefix}/img-{secrets.token_hex(4)}"


def basic_auth_header(username: str, password: str) -> str:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return f"Basic {token}"


def htpasswd_line(username: str, password: str) -> str:
    """A bcrypt htpasswd entry: distribution accepts nothing but bcrypt."""
    try:
        import bcrypt  # test-only dependency (PyPI "bcrypt"); the stdlib has no bcrypt
    except ImportError:
        bcrypt = None
    if bcrypt is not None:
        # Cost 4 is the minimum; the hash only guards a throw-away test registry and must be fast.
        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
        return f"{username}:{hashed}"
    if shutil.which("htpasswd"):
        # -i reads the password from stdin so it never shows in the process list.
        done = subprocess.run(
            ["htpasswd", "-niB", "-C", "4", username],
            input=password,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip()
    missing("needs the 'bcrypt' Python package or apache2-utils' htpasswd to write htpasswd files")


# --------------------------------------------------------------------------------------------
# Registry processes
# --------------------------------------------------------------------------------------------


@dataclass
class Registry:
    host: str  # "127.0.0.1:PORT", the form skopeo and the transfer script take
    storage: Path
    process: subprocess.Popen | None = None
    username: str | None = None
    password: str | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def credential(self) -> str | None:
        """``user:password`` as the workflow secret holds it."""
        if self.username is None:
            return None
        return f"{self.username}:{self.password}"

    def auth_headers(self) -> dict[str, str]:
        if self.username is None:
            return {}
        return {"Authorization": basic_auth_header(self.username, self.password or "")}

    def blob_data_path(self, digest: str) -> Path:
        algo, hexpart = digest.split(":", 1)
        return self.storage / "docker/registry/v2/blobs" / algo / hexpart[:2] / hexpart / "data"

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def wait_until_ready(
    url: str, process: subprocess.Popen | None, log_path: Path | None, timeout: float = READY_TIMEOUT
) -> None:
    """Poll ``/v2/`` until the registry answers (200, or 401 when it wants a login)."""
    deadline = time.monotonic() + timeout
    parsed = urllib.parse.urlsplit(url)
    last_error = "no answer yet"
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            log = log_path.read_text(errors="replace") if log_path and log_path.exists() else ""
            raise RuntimeError(f"registry exited with {process.returncode} before it was ready:\n{log}")
        try:
            conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=2)
            conn.request("GET", "/v2/")
            status = conn.getresponse().status
            conn.close()
            if status in (200, 401):
                return
            last_error = f"HTTP {status}"
        except OSError as exc:
            last_error = str(exc)
        time.sleep(0.05)
    raise RuntimeError(f"registry at {url} not ready after {timeout:.0f}s: {last_error}")


def start_registry(workdir: Path, *, username: str | None = None, password: str | None = None) -> Registry:
    """Start ``docker-registry serve`` on a free loopback port, storing into ``workdir``."""
    if not os.access(REGISTRY_BINARY, os.X_OK):
        missing(f"{REGISTRY_BINARY} is missing: apt-get install docker-registry")
    workdir.mkdir(parents=True, exist_ok=True)
    storage = workdir / "storage"
    storage.mkdir(exist_ok=True)
    port = free_port()
    config: dict = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {
            "filesystem": {"rootdirectory": str(storage)},
            "delete": {"enabled": True},
            # No "cache" section on purpose: a descriptor cache would hide a blob a test removed.
            # Upload purging would only start a background goroutine nobody needs here.
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
        "http": {"addr": f"127.0.0.1:{port}", "secret": secrets.token_hex(16)},
    }
    if username is not None:
        htpasswd = workdir / "htpasswd"
        htpasswd.write_text(htpasswd_line(username, password or "") + "\n")
        config["auth"] = {"htpasswd": {"realm": "imagesync-test", "path": str(htpasswd)}}
    config_path = workdir / "config.yml"
    # JSON is valid YAML, so no YAML writer is needed.
    config_path.write_text(json.dumps(config, indent=2))
    log_path = workdir / "registry.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [REGISTRY_BINARY, "serve", str(config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    registry = Registry(
        host=f"127.0.0.1:{port}",
        storage=storage,
        process=process,
        username=username,
        password=password,
        log_path=log_path,
    )
    try:
        wait_until_ready(registry.url, process, log_path)
    except BaseException:
        registry.stop()
        raise
    return registry


# --------------------------------------------------------------------------------------------
# Tiny OCI images
# --------------------------------------------------------------------------------------------


@dataclass
class Blob:
    media_type: str
    data: bytes

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.data).hexdigest()

    def descriptor(self, **extra) -> dict:
        return {"mediaType": self.media_type, "digest": self.digest, "size": len(self.data), **extra}


@dataclass
class Image:
    """A manifest (or index) with everything it references."""

    media_type: str
    manifest: bytes
    blobs: list[Blob] = field(default_factory=list)
    children: list["Image"] = field(default_factory=list)
    platform: dict | None = None

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.manifest).hexdigest()


def _layer_tar(seed: str) -> bytes:
    content = f"imagesync test layer {seed}\n".encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("imagesync/seed.txt")
        info.size = len(content)
        info.mtime = 0
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def build_image(seed: str, *, os_name: str = "linux", architecture: str = "amd64") -> Image:
    """A single-platform OCI image with one layer; ``seed`` makes its digests unique."""
    tar_bytes = _layer_tar(f"{seed}/{os_name}/{architecture}")
    # mtime=0 keeps the compressed bytes, and so the digests, reproducible.
    layer = Blob(OCI_LAYER_GZIP, gzip.compress(tar_bytes, mtime=0))
    config_doc = {
        "architecture": architecture,
        "os": os_name,
        "config": {"Labels": {"imagesync.test.seed": seed}},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(tar_bytes).hexdigest()]},
    }
    config = Blob(OCI_CONFIG, json.dumps(config_doc, sort_keys=True).encode())
    manifest_doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.descriptor(),
        "layers": [layer.descriptor()],
    }
    return Image(
        media_type=OCI_MANIFEST,
        manifest=json.dumps(manifest_doc, sort_keys=True).encode(),
        blobs=[config, layer],
        platform={"os": os_name, "architecture": architecture},
    )


def build_index(
    seed: str, platforms: tuple[tuple[str, str], ...] = (("linux", "amd64"), ("linux", "arm64"))
) -> Image:
    """A multi-platform OCI index over one single-platform image per ``(os, arch)``."""
    children = [build_image(seed, os_name=o, architecture=a) for o, a in platforms]
    index_doc = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": c.media_type, "digest": c.digest, "size": len(c.manifest), "platform": c.platform}
            for c in children
        ],
    }
    return Image(
        media_type=OCI_INDEX, manifest=json.dumps(index_doc, sort_keys=True).encode(), children=children
    )


# --------------------------------------------------------------------------------------------
# Registry HTTP API
# --------------------------------------------------------------------------------------------


def _request(
    base_url: str, method: str, path: str, *, headers: dict | None = None, body: bytes | None = None
) -> tuple[int, dict[str, str], bytes]:
    parsed = urllib.parse.urlsplit(base_url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data
    finally:
        conn.close()


def push_blob(registry: Registry, repo: str, blob: Blob) -> None:
    headers = registry.auth_headers()
    status, _, _ = _request(registry.url, "HEAD", f"/v2/{repo}/blobs/{blob.digest}", headers=headers)
    if status == 200:
        return
    status, resp_headers, data = _request(registry.url, "POST", f"/v2/{repo}/blobs/uploads/", headers=headers)
    if status != 202:
        raise RuntimeError(f"blob upload start failed: HTTP {status} {data[:300]!r}")
    location = urllib.parse.urlsplit(resp_headers["location"])
    query = urllib.parse.parse_qsl(location.query) + [("digest", blob.digest)]
    target = f"{location.path}?{urllib.parse.urlencode(query)}"
    put_headers = {
        **headers,
        "Content-Type": "application/octet-stream",
        "Content-Length": str(len(blob.data)),
    }
    status, _, data = _request(registry.url, "PUT", target, headers=put_headers, body=blob.data)
    if status != 201:
        raise RuntimeError(f"blob upload failed: HTTP {status} {data[:300]!r}")


def push_manifest(registry: Registry, repo: str, reference: str, media_type: str, body: bytes) -> str:
    headers = {**registry.auth_headers(), "Content-Type": media_type}
    status, resp_headers, data = _request(
        registry.url, "PUT", f"/v2/{repo}/manifests/{reference}", headers=headers, body=body
    )
    if status != 201:
        raise RuntimeError(f"manifest push failed: HTTP {status} {data[:300]!r}")
    return resp_headers.get("docker-content-digest", "")


def push_image(registry: Registry, repo: str, tag: str, image: Image) -> str:
    """Push an image or index with all it references; returns the manifest digest."""
    for child in image.children:
        for blob in child.blobs:
            push_blob(registry, repo, blob)
        push_manifest(registry, repo, child.digest, child.media_type, child.manifest)
    for blob in image.blobs:
        push_blob(registry, repo, blob)
    digest = push_manifest(registry, repo, tag, image.media_type, image.manifest)
    assert digest == image.digest, (digest, image.digest)
    return digest


def manifest_digest(registry: Registry, repo: str, reference: str) -> str | None:
    """The digest the registry stores for ``repo:reference`` (HEAD), or None when absent."""
    headers = {**registry.auth_headers(), "Accept": MANIFEST_ACCEPT}
    status, resp_headers, _ = _request(
        registry.url, "HEAD", f"/v2/{repo}/manifests/{reference}", headers=headers
    )
    if status == 404:
        return None
    if status != 200:
        raise RuntimeError(f"HEAD manifest {repo}:{reference}: HTTP {status}")
    return resp_headers["docker-content-digest"]


def get_manifest(registry: Registry, repo: str, reference: str) -> tuple[str, dict]:
    headers = {**registry.auth_headers(), "Accept": MANIFEST_ACCEPT}
    status, resp_headers, data = _request(
        registry.url, "GET", f"/v2/{repo}/manifests/{reference}", headers=headers
    )
    if status != 200:
        raise RuntimeError(f"GET manifest {repo}:{reference}: HTTP {status}")
    return resp_headers.get("content-type", ""), json.loads(data)


def list_tags(registry: Registry, repo: str) -> list[str]:
    status, _, data = _request(registry.url, "GET", f"/v2/{repo}/tags/list", headers=registry.auth_headers())
    if status == 404:
        return []
    if status != 200:
        raise RuntimeError(f"tags/list {repo}: HTTP {status}")
    return sorted(json.loads(data).get("tags") or [])


# --------------------------------------------------------------------------------------------
# Counting proxy
# --------------------------------------------------------------------------------------------

_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
}


class CountingProxy:
    """An HTTP proxy in front of one registry that records ``(method, path)`` of every request.

    Options a test may set at any time:
    - ``bearer=True``: demand a bearer token the way Docker Hub does (401 + ``WWW-Authenticate:
      Bearer realm=.../token``); ``token_credential`` ("user:password") makes the token endpoint
      want Basic auth, like ACR's.
    - ``ratelimit_remaining``: send Docker Hub's ``ratelimit-limit``/``ratelimit-remaining`` headers
      on manifest responses, count each manifest GET as a pull, and answer 429 once none are left.
    - ``broken_paths``: request paths answered with the given HTTP status instead of forwarding.
    - ``delay``: seconds added before each request is answered (a fixed network latency, for
      benchmarks; 0 by default).

    ``authorizations`` records the auth scheme each request came with ("" for none), so a test can
    prove that no credential was sent to this host.
    """

    def __init__(
        self,
        upstream: Registry,
        *,
        bearer: bool = False,
        token_credential: str | None = None,
        delay: float = 0.0,
    ):
        self.upstream = upstream
        self.delay = delay
        self.bearer = bearer
        self.token_credential = token_credential
        self.ratelimit_limit = 100
        self.ratelimit_remaining: int | None = None
        self.broken_paths: dict[str, int] = {}
        self.requests: list[tuple[str, str]] = []
        self.authorizations: list[tuple[str, str]] = []
        self.token_requests: list[str] = []
        self._tokens: set[str] = set()
        self._lock = threading.Lock()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self.host = f"127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="counting-proxy", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.authorizations.clear()
            self.token_requests.clear()

    def manifest_requests(self, method: str | None = None) -> list[tuple[str, str]]:
        with self._lock:
            return [
                (m, p) for m, p in self.requests if "/manifests/" in p and (method is None or m == method)
            ]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _handler_class(self):
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format, *args):  # noqa: A002 - keeps test output clean
                pass

            def do_GET(self):
                self._handle()

            def do_HEAD(self):
                self._handle()

            def do_POST(self):
                self._handle()

            def do_PUT(self):
                self._handle()

            def do_PATCH(self):
                self._handle()

            def do_DELETE(self):
                self._handle()

            def _reply(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _error(self, status: int, code: str, message: str, headers: dict | None = None) -> None:
                body = json.dumps({"errors": [{"code": code, "message": message}]}).encode()
                self._reply(status, {"Content-Type": "application/json", **(headers or {})}, body)

            def _read_body(self) -> bytes | None:
                if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                    # skopeo streams blob uploads of unknown size as chunks.
                    parts = []
                    while True:
                        size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return b"".join(parts)
                        parts.append(self.rfile.read(size))
                        self.rfile.readline()
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else None

            def _handle(self) -> None:
                body = self._read_body()
                path = self.path
                bare_path = urllib.parse.urlsplit(path).path
                scheme = self.headers.get("Authorization", "").split(" ", 1)[0]
                with proxy._lock:
                    proxy.requests.append((self.command, path))
                    proxy.authorizations.append((path, scheme))
                if proxy.delay > 0:
                    time.sleep(proxy.delay)
                if bare_path == "/token":
                    self._token(path)
                    return
                if bare_path in proxy.broken_paths:
                    self._error(proxy.broken_paths[bare_path], "UNKNOWN", "broken on purpose by the test")
                    return
                if proxy.bearer and not self._bearer_ok():
                    self._challenge(bare_path)
                    return
                rate_headers: dict[str, str] = {}
                if proxy.ratelimit_remaining is not None and "/manifests/" in bare_path:
                    with proxy._lock:
                        if self.command == "GET":
                            if proxy.ratelimit_remaining <= 0:
                                # Retry-After 0 keeps skopeo's built-in back-off (minutes) out of the tests.
                                limit_headers = {**self._rate_headers(0), "Retry-After": "0"}
                                self._error(
                                    429,
                                    "TOOMANYREQUESTS",
                                    "You have reached your pull rate limit.",
                                    limit_headers,
                                )
                                return
                            proxy.ratelimit_remaining -= 1
                        rate_headers = self._rate_headers(proxy.ratelimit_remaining)
                self._forward(body, rate_headers)

            def _rate_headers(self, remaining: int) -> dict[str, str]:
                return {
                    "ratelimit-limit": f"{proxy.ratelimit_limit};w=21600",
                    "ratelimit-remaining": f"{remaining};w=21600",
                }

            def _bearer_ok(self) -> bool:
                value = self.headers.get("Authorization", "")
                return value.startswith("Bearer ") and value[len("Bearer ") :] in proxy._tokens

            def _challenge(self, bare_path: str) -> None:
                challenge = f'Bearer realm="{proxy.url}/token",service="imagesync-test"'
                parts = bare_path.split("/")
                for marker in ("manifests", "blobs", "tags"):
                    if marker in parts[2:]:
                        name = "/".join(parts[2 : parts.index(marker, 2)])
                        challenge += f',scope="repository:{name}:pull"'
                        break
                self._error(401, "UNAUTHORIZED", "authentication required", {"WWW-Authenticate": challenge})

            def _token(self, path: str) -> None:
                with proxy._lock:
                    proxy.token_requests.append(path)
                if proxy.token_credential is not None:
                    expected = basic_auth_header(*proxy.token_credential.split(":", 1))
                    if self.headers.get("Authorization") != expected:
                        self._error(401, "UNAUTHORIZED", "incorrect username or password")
                        return
                token = secrets.token_hex(16)
                with proxy._lock:
                    proxy._tokens.add(token)
                body = json.dumps({"token": token, "access_token": token, "expires_in": 300}).encode()
                self._reply(200, {"Content-Type": "application/json"}, body)

            def _forward(self, body: bytes | None, extra_headers: dict[str, str]) -> None:
                headers: dict[str, str] = {}
                for name, value in self.headers.items():
                    if name.lower() in _HOP_BY_HOP:
                        continue
                    # Go clients send one Accept line per media type: all of them must reach the
                    # registry, or it refuses OCI manifests.
                    headers[name] = f"{headers[name]}, {value}" if name in headers else value
                if proxy.bearer:
                    # The token is the proxy's own: the registry behind it gets its own login
                    # instead, which makes proxy + htpasswd registry behave like ACR.
                    headers.pop("Authorization", None)
                    headers.update(proxy.upstream.auth_headers())
                if body is not None:
                    headers["Content-Length"] = str(len(body))
                upstream = urllib.parse.urlsplit(proxy.upstream.url)
                conn = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=60)
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    response = conn.getresponse()
                    data = response.read()
                    out_headers = {}
                    for name, value in response.getheaders():
                        if name.lower() in _HOP_BY_HOP:
                            continue
                        if name.lower() == "location":
                            value = value.replace(proxy.upstream.url, proxy.url)
                        out_headers[name] = value
                    out_headers.update(extra_headers)
                    self.send_response(response.status)
                    for name, value in out_headers.items():
                        self.send_header(name, value)
                    # HEAD keeps the upstream length: clients read the manifest size from it.
                    self.send_header("Content-Length", response.getheader("Content-Length") or str(len(data)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                finally:
                    conn.close()

        return Handler


# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def registry_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("registries")


@pytest.fixture(scope="session")
def source_registry(registry_root) -> Registry:
    """A registry without auth, standing in for Docker Hub."""
    registry = start_registry(registry_root / "source")
    yield registry
    registry.stop()


@pytest.fixture(scope="session")
def destination_registry(registry_root) -> Registry:
    """A registry with htpasswd auth, standing in for ACR."""
    registry = start_registry(
        registry_root / "destination", username="acr-user", password="fixed-" + secrets.token_hex(8)
    )
    yield registry
    registry.stop()


@pytest.fixture
def counting_proxy(source_registry) -> CountingProxy:
    """A fresh request-counting proxy in front of the source registry (plain, no token auth)."""
    proxy = CountingProxy(source_registry)
    yield proxy
    proxy.close()


@pytest.fixture
def make_proxy():
    """Factory for proxies with other options (``make_proxy(registry, bearer=True, ...)``)."""
    proxies: list[CountingProxy] = []

    def factory(upstream: Registry, **options) -> CountingProxy:
        proxy = CountingProxy(upstream, **options)
        proxies.append(proxy)
        return proxy

    yield factory
    for proxy in proxies:
        proxy.close()
