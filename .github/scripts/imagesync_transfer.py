#!/usr/bin/env python3
"""Copy container images for imagesync's GitHub workflows (copy.yml and sync.yml).

    python3 .github/scripts/imagesync_transfer.py copy|sync

Every input arrives in an environment variable (the workflow passes inputs and secrets through a
step's ``env:`` so that nothing untrusted is ever pasted into shell text) and is validated here
again, whatever the portal already checked: anyone with write access can dispatch a workflow by
hand. One image (copy) or one repository (sync) per run.

Standard library only, Python 3.10+ and skopeo 1.9 or newer: the GitHub runner has python3 and
skopeo 1.13, Debian 12 (where the tests run) has skopeo 1.9.3.

The last line that matters to a machine is ``IMAGESYNC-RESULT {json}``; it is printed exactly once,
whatever happens. Exit codes: 0 all done, 1 something failed, 2 invalid input, 3 stopped early
because the source registry's pull limit ran out.

Environment (the workflow inputs, then the secrets, then operator settings):
    IMAGESYNC_SOURCE              source registry host (default docker.io)
    IMAGESYNC_DESTINATION         destination registry host (an Aliyun ACR host unless allowed below)
    IMAGESYNC_SOURCE_REPO         copy: repo[:tag] or repo@sha256:...; sync: repo
    IMAGESYNC_DESTINATION_REPO    copy: namespace/repo[:tag] (tag defaults to the source tag)
    IMAGESYNC_DESTINATION_SCOPE   sync: namespace; the repository keeps the source's last name part
    IMAGESYNC_INCLUDE_TAGS        sync: regular expression a tag must contain a match of
    IMAGESYNC_EXCLUDE_TAGS        sync: regular expression that drops a tag
    IMAGESYNC_REQUEST_ID          the portal's job id, echoed in the result
    IMAGESYNC_CREDENTIAL_NAME     name of the secret in DESTINATION_CREDENTIAL, for messages
    DESTINATION_CREDENTIAL        username:password for the destination (required)
    SOURCE_CREDENTIAL             username:password for Docker Hub; never sent to any other source
    IMAGESYNC_ALLOWED_DESTINATIONS  comma-separated host[:port] allowed besides Aliyun's hosts
    IMAGESYNC_INSECURE_REGISTRIES   comma-separated host[:port] spoken to over plain http (tests)
    IMAGESYNC_MIN_PULLS_LEFT      copy only while the source reports at least this many pulls left (1)
    IMAGESYNC_COPY_TIMEOUT        seconds one skopeo copy may take (1800)
    IMAGESYNC_SKOPEO              skopeo executable (default: skopeo on PATH)
    GITHUB_STEP_SUMMARY           when set, a Markdown table of the outcome is appended to it
    GITHUB_ACTIONS                "true" on a runner: passwords are then masked with ::add-mask::
"""

from __future__ import annotations

import base64
import hashlib
import html
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse

RESULT_PREFIX = "IMAGESYNC-RESULT "
SCHEMA_VERSION = 1

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_STOPPED = 3

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
DOCKER_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}

# Every manifest type a registry may store. Without the full list a registry may convert the
# manifest on the fly and answer with a digest that is not the one it stores.
MANIFEST_ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)

HTTP_TIMEOUT = 30
HTTP_ATTEMPTS = 3
MAX_INPUT_LENGTH = 512
MAX_REASON_LENGTH = 600

# --- Reference grammar (github.com/distribution/reference) ------------------------------------
# re.ASCII: Python's \w and [a-z] ranges would otherwise admit non-ASCII letters that the Go
# grammar refuses. Always used with fullmatch: "$" would also match before a trailing newline.
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
DOMAIN_RE = re.compile(rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*(?::[0-9]{{1,5}})?", re.ASCII)
PATH_RE = re.compile(rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*", re.ASCII)
TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", re.ASCII)
DIGEST_RE = re.compile(r"sha256:[a-f0-9]{64}", re.ASCII)
NAME_TOTAL_MAX = 255
# GitHub secret names: letters, digits and underscores, not starting with a digit.
SECRET_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}", re.ASCII)
REQUEST_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", re.ASCII)

# The destination credential must only ever be sent to an Aliyun Container Registry: a run
# dispatched by hand with another host would otherwise hand the team's password to that host.
ALIYUN_DESTINATION_RES = [
    re.compile(r"registry(?:-intl)?(?:-vpc|-internal)?\.[a-z0-9-]+\.aliyuncs\.com", re.ASCII),
    re.compile(r"crpi-[a-z0-9]+(?:-vpc)?\.[a-z0-9-]+\.personal\.cr\.aliyuncs\.com", re.ASCII),
    re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?-registry(?:-vpc)?\.[a-z0-9-]+\.cr\.aliyuncs\.com", re.ASCII),
]


class InputError(Exception):
    """An input that is refused before anything touches a registry."""


class RegistryError(Exception):
    pass


class AuthenticationError(RegistryError):
    """The registry or its token service refused the credentials we sent (or wanted some)."""


class AccessDenied(RegistryError):
    """A token was issued but does not grant access: private, missing, or not ours to read."""


class RateLimited(RegistryError):
    pass


# --------------------------------------------------------------------------------------------
# Output helpers
# --------------------------------------------------------------------------------------------


def _command_escape(text: str) -> str:
    # Workflow commands end at a newline: escaping keeps untrusted text inside one command.
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def gh_error(message: str, title: str = "imagesync") -> None:
    print(
        f"::error title={_command_escape(title).replace(',', '%2C').replace(':', '%3A')}::"
        f"{_command_escape(message)}",
        flush=True,
    )


def gh_warning(message: str) -> None:
    print(f"::warning::{_command_escape(message)}", flush=True)


def shown(value: str, limit: int = 80) -> str:
    """A quoted, escaped, shortened form of untrusted input, safe for logs and messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


# --------------------------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------------------------


def _check_length(field: str, value: str) -> None:
    if len(value) > MAX_INPUT_LENGTH:
        raise InputError(f"{field} is too long ({len(value)} characters)")


def normalize_host(field: str, value: str) -> str:
    _check_length(field, value)
    if not DOMAIN_RE.fullmatch(value):
        raise InputError(
            f"{field} {shown(value)} is not a registry host name (like docker.io, ghcr.io or "
            f"registry.cn-beijing.aliyuncs.com, optionally with :port)"
        )
    host = value.lower()  # Host names compare case-insensitively; "Docker.io" is Docker Hub too.
    if ":" in host:
        port = int(host.rsplit(":", 1)[1])
        if not 1 <= port <= 65535:
            raise InputError(f"{field} {shown(value)} has an invalid port")
    if host in DOCKER_HUB_ALIASES:
        return DOCKER_HUB
    return host


def _looks_like_domain(component: str) -> bool:
    return "." in component or ":" in component or component == "localhost"


def validate_path(field: str, value: str, host: str) -> str:
    if not PATH_RE.fullmatch(value):
        raise InputError(
            f"{field} {shown(value)} is not a valid repository name: lower-case letters and digits "
            f"separated by '.', '_', '__', '-' or '/'"
        )
    components = value.split("/")
    if len(components) > 1 and _looks_like_domain(components[0]):
        raise InputError(
            f"{field} {shown(value)} starts with a registry host; give the host in the "
            f"registry field and only the repository here"
        )
    if host == DOCKER_HUB and len(components) == 1:
        value = f"library/{value}"  # Docker Hub's official images live under library/.
    if len(host) + 1 + len(value) > NAME_TOTAL_MAX:
        raise InputError(f"{field} {shown(value)} is longer than {NAME_TOTAL_MAX} characters with its host")
    return value


def split_reference(field: str, value: str) -> tuple[str, str | None, str | None]:
    """``repo[:tag][@digest]`` -> (repo, tag, digest), each still unvalidated."""
    _check_length(field, value)
    digest = None
    if "@" in value:
        value, digest = value.split("@", 1)
    tag = None
    last_slash = value.rfind("/")
    colon = value.rfind(":")
    if colon > last_slash:
        value, tag = value[:colon], value[colon + 1 :]
    return value, tag, digest


def validate_tag(field: str, tag: str) -> str:
    if not TAG_RE.fullmatch(tag):
        raise InputError(
            f"{field} has an invalid tag {shown(tag)}: letters, digits, '_', '.' and '-', at most "
            f"128 characters, not starting with '.' or '-'"
        )
    return tag


def validate_digest(field: str, digest: str) -> str:
    if not DIGEST_RE.fullmatch(digest):
        raise InputError(
            f"{field} has an invalid digest {shown(digest)}: expected sha256: and 64 lower-case hex digits"
        )
    return digest


def parse_credential(
    env_name: str, secret_name: str, value: str | None, *, required: bool
) -> tuple[str, str] | None:
    if value is not None:
        # Secrets pasted into GitHub's form often keep a trailing newline.
        value = value.strip("\r\n")
    if not value:
        if required:
            raise InputError(
                f"the repository secret {secret_name} is missing or empty; it must hold "
                f"username:password (for Aliyun ACR: the login name and the fixed password set in "
                f"the ACR console, not the Aliyun account password)"
            )
        return None
    username, sep, password = value.partition(":")
    if not sep or not username or not password:
        raise InputError(f"the secret {secret_name} ({env_name}) must have the form username:password")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise InputError(f"the secret {secret_name} ({env_name}) contains control characters")
    return username, password


def compile_filter(field: str, pattern: str) -> re.Pattern | None:
    if not pattern:
        return None
    _check_length(field, pattern)
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise InputError(f"{field} {shown(pattern)} is not a valid regular expression: {exc}") from None


def host_list(env_value: str) -> set[str]:
    hosts = set()
    for item in env_value.split(","):
        item = item.strip().lower()
        if item and DOMAIN_RE.fullmatch(item):
            hosts.add(DOCKER_HUB if item in DOCKER_HUB_ALIASES else item)
        elif item:
            gh_warning(f"ignoring {shown(item)} in a registry host list: not a host[:port]")
    return hosts


def destination_allowed(host: str, extra: set[str]) -> bool:
    bare = host.split(":", 1)[0]
    if host in extra:
        return True
    return ":" not in host and any(p.fullmatch(bare) for p in ALIYUN_DESTINATION_RES)


class Settings:
    """All inputs of one run, validated and normalised."""

    def __init__(self, kind: str, env: dict[str, str]):
        self.kind = kind
        self.request_id = env.get("IMAGESYNC_REQUEST_ID", "")
        self.source_host: str | None = None
        self.source_repo: str | None = None
        self.destination_host: str | None = None
        self.destination_repo: str | None = None
        self.source_ref: str | None = None  # copy: the tag or digest to read
        self.destination_tag: str | None = None  # copy: the tag to write
        self.include: re.Pattern | None = None
        self.exclude: re.Pattern | None = None
        self.source_credential: tuple[str, str] | None = None
        self.destination_credential: tuple[str, str] | None = None
        self.insecure: set[str] = set()
        self.min_pulls_left = 1
        self.copy_timeout = 1800
        self.skopeo = env.get("IMAGESYNC_SKOPEO") or "skopeo"
        self._parse(env)

    def _parse(self, env: dict[str, str]) -> None:
        if self.request_id and not REQUEST_ID_RE.fullmatch(self.request_id):
            raise InputError(
                f"request_id {shown(self.request_id)} may hold only letters, digits, '.', '_' and '-'"
            )

        self.source_host = normalize_host("source", env.get("IMAGESYNC_SOURCE") or DOCKER_HUB)
        destination = env.get("IMAGESYNC_DESTINATION", "")
        if not destination:
            raise InputError("destination (the registry host to copy to) is required")
        self.destination_host = normalize_host("destination", destination)
        allowed = host_list(env.get("IMAGESYNC_ALLOWED_DESTINATIONS", ""))
        if not destination_allowed(self.destination_host, allowed):
            raise InputError(
                f"destination {shown(self.destination_host)} is not an Aliyun Container Registry host; "
                f"the team credential is only sent to hosts an admin allowed (repository variable "
                f"IMAGESYNC_ALLOWED_DESTINATIONS, comma-separated host[:port] list)"
            )

        raw_source = env.get("IMAGESYNC_SOURCE_REPO", "")
        if not raw_source:
            raise InputError("source_repo is required")
        path, tag, digest = split_reference("source_repo", raw_source)
        self.source_repo = validate_path("source_repo", path, self.source_host)

        if self.kind == "copy":
            if tag is not None and digest is not None:
                # skopeo refuses such references; which one the user meant is a guess we won't make.
                raise InputError("source_repo has both a tag and a digest; give only one of them")
            if digest is not None:
                self.source_ref = validate_digest("source_repo", digest)
            else:
                # No tag means "latest", as for docker pull; "nginx:" (empty tag) is refused.
                self.source_ref = validate_tag("source_repo", "latest" if tag is None else tag)
            raw_destination = env.get("IMAGESYNC_DESTINATION_REPO", "")
            if not raw_destination:
                raise InputError("destination_repo (namespace/repository:tag) is required")
            dpath, dtag, ddigest = split_reference("destination_repo", raw_destination)
            if ddigest is not None:
                raise InputError("destination_repo must name a tag, not a digest")
            self.destination_repo = validate_path("destination_repo", dpath, self.destination_host)
            if dtag is None:
                if digest is not None:
                    raise InputError("destination_repo needs a tag when the source is given by digest")
                dtag = self.source_ref
            self.destination_tag = validate_tag("destination_repo", dtag)
        else:
            if tag is not None or digest is not None:
                raise InputError(
                    "source_repo of a sync is a repository without tag or digest (all tags are synced)"
                )
            scope = env.get("IMAGESYNC_DESTINATION_SCOPE", "")
            if not scope:
                raise InputError("destination_scope (the namespace to sync into) is required")
            _check_length("destination_scope", scope)
            if not PATH_RE.fullmatch(scope):
                raise InputError(f"destination_scope {shown(scope)} is not a valid namespace")
            name = self.source_repo.rsplit("/", 1)[-1]
            self.destination_repo = validate_path(
                "destination_scope", f"{scope}/{name}", self.destination_host
            )
            self.include = compile_filter("include_tags", env.get("IMAGESYNC_INCLUDE_TAGS", ""))
            self.exclude = compile_filter("exclude_tags", env.get("IMAGESYNC_EXCLUDE_TAGS", ""))

        secret_name = env.get("IMAGESYNC_CREDENTIAL_NAME") or "DESTINATION_CREDENTIAL"
        if not SECRET_NAME_RE.fullmatch(secret_name) or secret_name.upper().startswith("GITHUB_"):
            raise InputError(f"credential {shown(secret_name)} is not a usable GitHub secret name")
        self.destination_credential = parse_credential(
            "DESTINATION_CREDENTIAL", secret_name, env.get("DESTINATION_CREDENTIAL"), required=True
        )
        if self.source_host == DOCKER_HUB:
            # Team credentials go to Docker Hub only; a user-chosen source host never gets them.
            self.source_credential = parse_credential(
                "SOURCE_CREDENTIAL", "SOURCE_CREDENTIAL", env.get("SOURCE_CREDENTIAL"), required=False
            )
        # The destination login is never used for reading, even when source and destination are
        # the same host: it would let a run copy images its dispatcher could not read.

        self.insecure = host_list(env.get("IMAGESYNC_INSECURE_REGISTRIES", ""))
        self.min_pulls_left = _int_setting(env, "IMAGESYNC_MIN_PULLS_LEFT", 1, 0, 10_000)
        self.copy_timeout = _int_setting(env, "IMAGESYNC_COPY_TIMEOUT", 1800, 10, 6 * 3600)

    @property
    def source_name(self) -> str:
        return f"{self.source_host}/{self.source_repo}"

    @property
    def destination_name(self) -> str:
        return f"{self.destination_host}/{self.destination_repo}"


def _int_setting(env: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "")
    if not raw:
        return default
    if not re.fullmatch(r"[0-9]{1,6}", raw, re.ASCII) or not low <= int(raw) <= high:
        raise InputError(f"{name} must be a whole number from {low} to {high}")
    return int(raw)


# --------------------------------------------------------------------------------------------
# Registry HTTP API (digests by HEAD, token auth)
# --------------------------------------------------------------------------------------------

_CHALLENGE_PARAM = re.compile(r'([A-Za-z_]+)=(?:"([^"]*)"|([^,\s]*))')


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.strip().partition(" ")
    params = {
        m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3))
        for m in _CHALLENGE_PARAM.finditer(rest)
    }
    return scheme.lower(), params


def parse_ratelimit(value: str | None) -> int | None:
    # Docker Hub sends e.g. "100;w=21600": the count, then the window in seconds.
    if not value:
        return None
    match = re.match(r"\s*(-?[0-9]+)", value)
    return int(match.group(1)) if match else None


class RegistryClient:
    """Just enough of the registry API v2 to read manifest digests without pulling.

    A HEAD of a manifest does not count as a Docker Hub pull; a GET does. This client only makes
    a GET when a registry leaves out the Docker-Content-Digest header, which Docker Hub never does.
    """

    def __init__(self, host: str, *, credential: tuple[str, str] | None, insecure: set[str], role: str):
        self.host = host
        self.api_host = DOCKER_HUB_API if host == DOCKER_HUB else host
        self.insecure = insecure
        self.scheme = "http" if host in insecure else "https"
        self.credential = credential
        self.role = role
        self.tokens: dict[str, str] = {}
        self.use_basic = False
        self.ratelimit_limit: int | None = None
        self.ratelimit_remaining: int | None = None
        self._ssl = ssl.create_default_context()

    # -- transport --
    def _send(self, method: str, url: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        parsed = urllib.parse.urlsplit(url)
        last_error: Exception | None = None
        for attempt in range(HTTP_ATTEMPTS):
            if attempt:
                time.sleep(2 ** (attempt - 1))
            if parsed.scheme == "https":
                conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                    parsed.hostname, parsed.port, timeout=HTTP_TIMEOUT, context=self._ssl
                )
            else:
                conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=HTTP_TIMEOUT)
            target = parsed.path + (f"?{parsed.query}" if parsed.query else "")
            try:
                conn.request(method, target, headers={"User-Agent": "imagesync-transfer/1", **headers})
                response = conn.getresponse()
                body = response.read()
                resp_headers = {k.lower(): v for k, v in response.getheaders()}
            except (OSError, http.client.HTTPException) as exc:
                last_error = exc
                continue
            finally:
                conn.close()
            self._note_ratelimit(resp_headers)
            if response.status >= 500 and attempt + 1 < HTTP_ATTEMPTS:
                last_error = RegistryError(f"HTTP {response.status} from {parsed.hostname}")
                continue
            return response.status, resp_headers, body
        raise RegistryError(f"{self.role} registry {self.host} did not answer: {last_error}")

    def _note_ratelimit(self, headers: dict[str, str]) -> None:
        remaining = parse_ratelimit(headers.get("ratelimit-remaining"))
        if remaining is not None:
            self.ratelimit_remaining = remaining
            self.ratelimit_limit = parse_ratelimit(headers.get("ratelimit-limit"))

    # -- auth --
    def _basic_value(self) -> str:
        assert self.credential is not None
        raw = f"{self.credential[0]}:{self.credential[1]}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    def _auth_headers(self, scope: str) -> dict[str, str]:
        if scope in self.tokens:
            return {"Authorization": f"Bearer {self.tokens[scope]}"}
        if self.use_basic:
            return {"Authorization": self._basic_value()}
        return {}

    def _fetch_token(self, params: dict[str, str], scope: str) -> str:
        realm = params.get("realm", "")
        parsed = urllib.parse.urlsplit(realm)
        realm_host = (parsed.netloc or "").lower()
        if parsed.scheme != "https" and not (parsed.scheme == "http" and realm_host in self.insecure):
            raise RegistryError(
                f"{self.role} registry {self.host} sent a token realm that is not https: {shown(realm)}"
            )
        query = {}
        if params.get("service"):
            query["service"] = params["service"]
        if scope:
            query["scope"] = params.get("scope") or scope
        url = (realm + ("&" if parsed.query else "?") + urllib.parse.urlencode(query)) if query else realm
        headers = {"Accept": "application/json"}
        if self.credential is not None:
            headers["Authorization"] = self._basic_value()
        status, _, body = self._send("GET", url, headers)
        if status in (401, 403):
            if self.credential is None:
                raise AuthenticationError(
                    f"{self.role} registry {self.host} requires a login and none was configured"
                )
            raise AuthenticationError(
                f"{self.role} registry {self.host} refused the credentials "
                f"(HTTP {status} from its token service)"
            )
        if status != 200:
            raise RegistryError(f"token service of {self.host} answered HTTP {status}")
        try:
            doc = json.loads(body)
            token = doc.get("token") or doc.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not token or not isinstance(token, str):
            raise RegistryError(f"token service of {self.host} sent no token")
        return token

    def request(
        self, method: str, path: str, *, scope: str, accept: str | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        url = f"{self.scheme}://{self.api_host}{path}"
        base_headers = {"Accept": accept} if accept else {}
        status, headers, body = self._send(method, url, {**base_headers, **self._auth_headers(scope)})
        if status != 401:
            return status, headers, body
        self.tokens.pop(scope, None)  # An expired token gets one fresh try.
        scheme, params = parse_challenge(headers.get("www-authenticate", ""))
        if scheme == "bearer":
            self.tokens[scope] = self._fetch_token(params, scope)
        elif scheme == "basic":
            if self.credential is None:
                raise AuthenticationError(
                    f"{self.role} registry {self.host} requires a login and none was configured"
                )
            if self.use_basic:
                raise AuthenticationError(
                    f"{self.role} registry {self.host} refused the credentials (unauthorized)"
                )
            self.use_basic = True
        else:
            raise RegistryError(f"{self.role} registry {self.host} answered 401 without a usable challenge")
        status, headers, body = self._send(method, url, {**base_headers, **self._auth_headers(scope)})
        if status == 401:
            if scheme == "basic":
                raise AuthenticationError(
                    f"{self.role} registry {self.host} refused the credentials (unauthorized)"
                )
            # Docker Hub and ACR answer this way for a repository that is private or does not exist.
            raise AccessDenied(
                f"{self.role} registry {self.host} denied access to {path} "
                f"(the repository does not exist or is private)"
            )
        return status, headers, body

    def check_login(self) -> None:
        """Fail early, before any copy, when the registry does not take our credentials."""
        status, _, _ = self.request("GET", "/v2/", scope="")
        if status not in (200, 404):
            raise RegistryError(f"{self.role} registry {self.host} answered HTTP {status} on /v2/")

    def manifest_digest(self, repo: str, reference: str) -> str | None:
        """The stored digest of ``repo:reference``, or None when the registry does not have it."""
        path = f"/v2/{repo}/manifests/{reference}"
        scope = f"repository:{repo}:pull"
        status, headers, _ = self.request("HEAD", path, scope=scope, accept=MANIFEST_ACCEPT)
        if status == 404:
            return None
        if status == 429:
            raise RateLimited(f"{self.role} registry {self.host} answered 429 Too Many Requests")
        if status == 403:
            raise AccessDenied(f"{self.role} registry {self.host} denied access to {repo}")
        if status != 200:
            raise RegistryError(
                f"{self.role} registry {self.host} answered HTTP {status} for {repo}:{reference}"
            )
        digest = headers.get("docker-content-digest", "")
        if DIGEST_RE.fullmatch(digest):
            return digest
        # Only registries that leave out the header get here: compute it from the bytes.
        status, headers, body = self.request("GET", path, scope=scope, accept=MANIFEST_ACCEPT)
        if status != 200:
            raise RegistryError(
                f"{self.role} registry {self.host} answered HTTP {status} for {repo}:{reference}"
            )
        return "sha256:" + hashlib.sha256(body).hexdigest()


# --------------------------------------------------------------------------------------------
# skopeo
# --------------------------------------------------------------------------------------------


def skopeo_reason(output: str) -> str:
    """The most telling line of skopeo's output: its fatal message, else its last line."""
    message = ""
    for line in output.splitlines():
        match = re.search(r'level=(?:fatal|error) msg="((?:[^"\\]|\\.)*)"', line)
        if match:
            message = match.group(1).replace('\\"', '"')
    if not message:
        lines = [line.strip() for line in output.splitlines() if line.strip()]
        message = lines[-1] if lines else "skopeo failed without a message"
    return message[:MAX_REASON_LENGTH]


def looks_rate_limited(reason: str) -> bool:
    lowered = reason.lower()
    return "toomanyrequests" in lowered or "too many requests" in lowered or "rate limit" in lowered


def looks_unauthorized(reason: str) -> bool:
    lowered = reason.lower()
    return any(
        word in lowered
        for word in (
            "unauthorized",
            "authentication required",
            "incorrect username",
            "invalid username",
            "denied",
        )
    )


class Skopeo:
    def __init__(self, settings: Settings, workdir: str):
        self.settings = settings
        self.binary = settings.skopeo
        self.workdir = workdir
        self.env = {
            k: v for k, v in os.environ.items() if k not in ("DESTINATION_CREDENTIAL", "SOURCE_CREDENTIAL")
        }
        # Passwords go into auth files, never onto a command line where `ps` would show them.
        self.source_authfile = self._authfile(
            "source-auth.json", settings.source_host, settings.source_credential
        )
        self.destination_authfile = self._authfile(
            "destination-auth.json", settings.destination_host, settings.destination_credential
        )

    def _authfile(self, name: str, host: str | None, credential: tuple[str, str] | None) -> str | None:
        if credential is None or host is None:
            return None
        auth = base64.b64encode(f"{credential[0]}:{credential[1]}".encode()).decode()
        path = os.path.join(self.workdir, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump({"auths": {host: {"auth": auth}}}, handle)
        return path

    def _run(self, args: list[str], timeout: int) -> subprocess.CompletedProcess:
        return subprocess.run(
            [self.binary, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            timeout=timeout,
            env=self.env,
        )

    def version(self) -> str:
        try:
            done = self._run(["--version"], 60)
        except FileNotFoundError:
            raise RegistryError(f"skopeo is not installed (looked for {shown(self.binary)})") from None
        match = re.search(r"version\s+([0-9][0-9A-Za-z.+-]*)", done.stdout)
        if done.returncode != 0 or not match:
            raise RegistryError(f"could not run skopeo --version: {done.stdout.strip()[:200]}")
        return match.group(1)

    def _tls(self, option: str, host: str | None) -> list[str]:
        return [f"{option}=false"] if host in self.settings.insecure else []

    def list_tags(self) -> list[str]:
        s = self.settings
        auth = ["--authfile", self.source_authfile] if self.source_authfile else ["--no-creds"]
        args = [
            "list-tags",
            "--retry-times",
            "3",
            *auth,
            *self._tls("--tls-verify", s.source_host),
            "--",
            f"docker://{s.source_name}",
        ]
        try:
            done = self._run(args, 600)
        except subprocess.TimeoutExpired:
            raise RegistryError(f"listing the tags of {s.source_name} timed out") from None
        if done.returncode != 0:
            raise RegistryError(f"could not list the tags of {s.source_name}: {skopeo_reason(done.stdout)}")
        try:
            tags = json.loads(done.stdout).get("Tags") or []
        except (ValueError, AttributeError):
            raise RegistryError(
                f"skopeo list-tags printed something unexpected for {s.source_name}"
            ) from None
        return [t for t in tags if isinstance(t, str)]

    def copy(self, source_ref: str, destination_tag: str) -> tuple[bool, str]:
        """Copy one image with every platform; (True, digest) or (False, reason)."""
        s = self.settings
        digestfile = os.path.join(self.workdir, "digest")
        if os.path.exists(digestfile):
            os.unlink(digestfile)
        separator = "@" if source_ref.startswith("sha256:") else ":"
        src_auth = ["--src-authfile", self.source_authfile] if self.source_authfile else ["--src-no-creds"]
        args = [
            "copy",
            "--all",
            "--preserve-digests",
            "--retry-times",
            "3",
            *src_auth,
            *self._tls("--src-tls-verify", s.source_host),
            "--dest-authfile",
            str(self.destination_authfile),
            *self._tls("--dest-tls-verify", s.destination_host),
            "--digestfile",
            digestfile,
            "--",
            f"docker://{s.source_name}{separator}{source_ref}",
            f"docker://{s.destination_name}:{destination_tag}",
        ]
        print(
            f"::group::skopeo copy {s.source_name}{separator}{source_ref} "
            f"-> {s.destination_name}:{destination_tag}",
            flush=True,
        )
        # Registry error texts end up in skopeo's output; they must not act as workflow commands.
        stop_token = secrets.token_hex(16)
        print(f"::stop-commands::{stop_token}", flush=True)
        try:
            done = self._run(args, s.copy_timeout)
            output = done.stdout
            ok = done.returncode == 0
        except subprocess.TimeoutExpired as exc:
            # TimeoutExpired carries bytes even in text mode.
            captured = exc.stdout or b""
            output = captured.decode(errors="replace") if isinstance(captured, bytes) else captured
            output += f"\nimagesync: skopeo copy timed out after {s.copy_timeout}s"
            ok = False
        print(output.rstrip(), flush=True)
        print(f"::{stop_token}::", flush=True)
        print("::endgroup::", flush=True)
        if not ok:
            return False, skopeo_reason(output)
        try:
            with open(digestfile, encoding="ascii") as handle:
                digest = handle.read().strip()
        except OSError:
            digest = ""
        return True, digest


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------


class Run:
    def __init__(self, kind: str):
        self.kind = kind
        self.started = time.monotonic()
        self.settings: Settings | None = None
        self.copied: list[dict] = []
        self.skipped: list[dict] = []
        self.failed: list[dict] = []
        self.not_attempted: list[str] = []
        self.error: str | None = None
        self.stopped: str | None = None
        self.invalid = False
        self.tags_found: int | None = None
        self.tags_selected: int | None = None
        self.skopeo_version: str | None = None
        self.source_client: RegistryClient | None = None

    @property
    def status(self) -> str:
        if self.error or self.failed:
            return "failed"
        if self.stopped:
            return "stopped"
        return "succeeded"

    @property
    def exit_code(self) -> int:
        if self.invalid:
            return EXIT_INVALID
        if self.error or self.failed:
            return EXIT_FAILED
        if self.stopped:
            return EXIT_STOPPED
        return EXIT_OK

    def result(self) -> dict:
        s = self.settings
        copy_ref = s.source_ref if s is not None and self.kind == "copy" else None
        limit = remaining = None
        if self.source_client is not None:
            limit, remaining = self.source_client.ratelimit_limit, self.source_client.ratelimit_remaining
        return {
            "schema": SCHEMA_VERSION,
            "kind": self.kind,
            "request_id": s.request_id if s is not None else None,
            "status": self.status,
            "source": s.source_name if s is not None else None,
            "source_reference": copy_ref,
            "destination": s.destination_name if s is not None else None,
            "copied": self.copied,
            "skipped": self.skipped,
            "failed": self.failed,
            "not_attempted": self.not_attempted,
            "error": self.error,
            "stopped": self.stopped,
            "tags_found": self.tags_found,
            "tags_selected": self.tags_selected,
            "ratelimit": {"limit": limit, "remaining": remaining},
            "skopeo_version": self.skopeo_version,
            "duration_seconds": round(time.monotonic() - self.started, 3),
        }

    # -- the work --
    def execute(self, env: dict[str, str]) -> None:
        try:
            self.settings = Settings(self.kind, env)
        except InputError as exc:
            self.invalid = True
            self.error = f"invalid input: {exc}"
            gh_error(self.error, "Invalid input")
            return
        s = self.settings
        if os.environ.get("GITHUB_ACTIONS") == "true":
            # GitHub masks the whole secret, not the password part of "user:password".
            for credential in (s.destination_credential, s.source_credential):
                if credential:
                    print(f"::add-mask::{credential[1]}", flush=True)
        workdir = tempfile.mkdtemp(prefix="imagesync-")  # mode 0700: the auth files live here
        try:
            skopeo = Skopeo(s, workdir)
            self.skopeo_version = skopeo.version()
            print(
                f"imagesync {self.kind}: {s.source_name} -> {s.destination_name} "
                f"(skopeo {self.skopeo_version})",
                flush=True,
            )
            self.source_client = RegistryClient(
                s.source_host, credential=s.source_credential, insecure=s.insecure, role="source"
            )
            destination = RegistryClient(
                s.destination_host,
                credential=s.destination_credential,
                insecure=s.insecure,
                role="destination",
            )
            try:
                destination.check_login()
            except AuthenticationError as exc:
                raise AuthenticationError(
                    f"destination registry refused the credentials (unauthorized): check the secret "
                    f"{env.get('IMAGESYNC_CREDENTIAL_NAME') or 'DESTINATION_CREDENTIAL'} (for Aliyun ACR: "
                    f"the login name and the fixed password set in the ACR console). Detail: {exc}"
                ) from None
            if self.kind == "copy":
                tags = [(s.source_ref, s.destination_tag)]
            else:
                tags = self._select_tags(skopeo.list_tags())
            self._transfer(tags, skopeo, destination)
        except (RegistryError, OSError) as exc:
            self.error = str(exc)
            gh_error(
                self.error, "Authentication failed" if isinstance(exc, AuthenticationError) else "imagesync"
            )
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _select_tags(self, tags: list[str]) -> list[tuple[str, str]]:
        s = self.settings
        assert s is not None
        self.tags_found = len(tags)
        selected = []
        # Registries list tags in no promised order; sorting makes runs and their logs repeatable.
        for tag in sorted(set(tags)):
            if not TAG_RE.fullmatch(tag):
                gh_warning(f"skipping tag {shown(tag)}: not a valid tag name")
                continue
            # search(), like skopeo sync's images-by-tag-regex: anchor with ^...$ for an exact match.
            if s.include is not None and not s.include.search(tag):
                continue
            if s.exclude is not None and s.exclude.search(tag):
                continue
            selected.append((tag, tag))
        self.tags_selected = len(selected)
        print(f"{len(tags)} tags found, {len(selected)} selected", flush=True)
        if not selected:
            gh_warning("no tag of the source repository matched the filters: nothing to do")
        return selected

    def _stop(self, reason: str) -> None:
        if self.stopped is None:
            self.stopped = reason
            print(f"stopping copies: {reason}", flush=True)

    def _pulls_exhausted(self) -> bool:
        client = self.source_client
        assert client is not None and self.settings is not None
        return (
            client.ratelimit_remaining is not None
            and client.ratelimit_remaining < self.settings.min_pulls_left
        )

    def _limit_message(self) -> str:
        client = self.source_client
        assert client is not None
        left = client.ratelimit_remaining
        of = f" of {client.ratelimit_limit}" if client.ratelimit_limit is not None else ""
        return (
            f"the source registry's pull limit is used up ({left}{of} pulls left); stopped "
            f"instead of failing the remaining tags: run again later, or add a SOURCE_CREDENTIAL "
            f"for Docker Hub"
        )

    def _transfer(self, tags: list[tuple[str, str]], skopeo: Skopeo, destination: RegistryClient) -> None:
        s = self.settings
        source = self.source_client
        assert s is not None and source is not None
        for index, (source_ref, dest_tag) in enumerate(tags):
            try:
                source_digest = source.manifest_digest(s.source_repo, source_ref)
            except RateLimited as exc:
                # Even HEADs are refused: nothing more can be learned or done.
                self._stop(f"{exc}: the source registry's pull limit is used up")
                self.not_attempted += [dst for _, dst in tags[index:]]
                break
            except (AccessDenied, AuthenticationError) as exc:
                self._fail(dest_tag, f"source image {s.source_name}:{source_ref} cannot be read ({exc})")
                continue
            except RegistryError as exc:
                self._fail(dest_tag, str(exc))
                continue
            if source_digest is None:
                separator = "@" if source_ref.startswith("sha256:") else ":"
                self._fail(dest_tag, f"source image {s.source_name}{separator}{source_ref} not found")
                continue
            try:
                dest_digest = destination.manifest_digest(s.destination_repo, dest_tag)
            except AuthenticationError as exc:
                # Every later tag would fail the same way: name them instead of trying them.
                self.not_attempted += [dst for _, dst in tags[index:]]
                raise AuthenticationError(
                    f"destination registry refused the credentials (unauthorized): {exc}"
                ) from None
            except AccessDenied:
                dest_digest = None  # A repository that does not exist yet may look like this.
            except RegistryError as exc:
                self._fail(dest_tag, str(exc))
                continue
            if dest_digest == source_digest:
                print(f"{dest_tag}: already up to date ({source_digest})", flush=True)
                self.skipped.append({"tag": dest_tag, "digest": source_digest})
                continue
            # HEADs cost no pulls, so once the limit is reached the loop goes on checking: the
            # tags already up to date are reported as such, and only real copies are left undone.
            if self.stopped is None and self._pulls_exhausted():
                self._stop(self._limit_message())
            if self.stopped is not None:
                self.not_attempted.append(dest_tag)
                continue
            ok, detail = skopeo.copy(source_ref, dest_tag)
            if ok:
                digest = detail or source_digest
                if digest != source_digest:
                    gh_warning(
                        f"{dest_tag}: destination digest {digest} differs from the source's {source_digest}"
                    )
                print(f"{dest_tag}: copied ({digest})", flush=True)
                self.copied.append({"tag": dest_tag, "digest": digest})
                continue
            if looks_unauthorized(detail) and s.destination_host in detail:
                detail = (
                    f"destination registry refused the credentials or the push (unauthorized): "
                    f"check the ACR fixed password and that the namespace exists. skopeo: {detail}"
                )
            self._fail(dest_tag, detail)
            if looks_rate_limited(detail):
                self._stop("the source registry answered 429 Too Many Requests: its pull limit is used up")
        if self.stopped is not None:
            listed = ", ".join(self.not_attempted[:50]) + (" ..." if len(self.not_attempted) > 50 else "")
            gh_error(
                f"{self.stopped}. Not attempted ({len(self.not_attempted)}): {listed or 'none'}",
                "Stopped early",
            )

    def _fail(self, tag: str, reason: str) -> None:
        reason = reason[:MAX_REASON_LENGTH]
        gh_error(f"{tag}: {reason}", "Copy failed")
        self.failed.append({"tag": tag, "reason": reason})

    # -- reporting --
    def report(self) -> None:
        result = self.result()
        # ensure_ascii keeps the line one line whatever the inputs held.
        print(RESULT_PREFIX + json.dumps(result, ensure_ascii=True, separators=(",", ":")), flush=True)
        summary_path = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary_path:
            try:
                with open(summary_path, "a", encoding="utf-8") as handle:
                    handle.write(markdown_summary(result))
            except OSError as exc:
                gh_warning(f"could not write the step summary: {exc}")


def _md(text: object) -> str:
    # Registry and skopeo messages are untrusted: no HTML, no table breaks, no code-span escapes.
    return html.escape(str(text)).replace("|", "&#124;").replace("`", "&#96;").replace("\n", " ")


def markdown_summary(result: dict) -> str:
    lines = [f"### imagesync {result['kind']}: {result['status']}", ""]
    if result.get("source"):
        lines.append(
            f"- From: {_md(result['source'])}"
            + (f" ({_md(result['source_reference'])})" if result.get("source_reference") else "")
        )
        lines.append(f"- To: {_md(result['destination'])}")
    if result.get("request_id"):
        lines.append(f"- Request: {_md(result['request_id'])}")
    if result.get("tags_found") is not None:
        lines.append(f"- Tags found: {result['tags_found']}, selected: {result['tags_selected']}")
    lines.append("")
    if result.get("error"):
        lines += [f"**Error:** {_md(result['error'])}", ""]
    if result.get("stopped"):
        lines += [f"**Stopped early:** {_md(result['stopped'])}", ""]
    rows = (
        [(e["tag"], "copied", e["digest"]) for e in result["copied"]]
        + [(e["tag"], "already up to date", e["digest"]) for e in result["skipped"]]
        + [(e["tag"], "failed", e["reason"]) for e in result["failed"]]
        + [(t, "not attempted", "") for t in result["not_attempted"]]
    )
    if rows:
        lines += ["| Tag | Result | Digest or reason |", "| --- | --- | --- |"]
        lines += [f"| {_md(tag)} | {outcome} | {_md(detail)} |" for tag, outcome, detail in rows]
        lines.append("")
    return "\n".join(lines) + "\n"


def _terminate(signum, frame):  # noqa: ARG001 - signal handler signature
    # A cancelled run gets SIGTERM: turn it into an exception so the auth files are removed.
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[1] not in ("copy", "sync"):
        print(
            "usage: imagesync_transfer.py copy|sync   (inputs come from IMAGESYNC_* variables)",
            file=sys.stderr,
        )
        return EXIT_INVALID
    signal.signal(signal.SIGTERM, _terminate)
    run = Run(argv[1])
    try:
        run.execute(dict(os.environ))
    except KeyboardInterrupt:
        run.error = "cancelled"
    except Exception as exc:  # noqa: BLE001 - the result line must come out even after a bug
        traceback.print_exc()
        run.error = f"internal error: {type(exc).__name__}: {exc}"
        gh_error(run.error)
    run.report()
    return run.exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv))
