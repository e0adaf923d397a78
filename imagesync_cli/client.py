"""The portal's REST API over HTTP (requests). Every failure becomes an ApiError with a clear message."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import requests

from imagesync_cli import __version__

EXIT_FAILED = 1
EXIT_UNREACHABLE = 3
EXIT_AUTH = 4
# Throttled requests are retried after Retry-After, but not forever.
MAX_THROTTLE_WAIT = 600.0


class ApiError(Exception):
    exit_code = EXIT_FAILED

    def __init__(self, message: str, *, status: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.body = body


class Unreachable(ApiError):
    exit_code = EXIT_UNREACHABLE


class AuthFailed(ApiError):
    exit_code = EXIT_AUTH


def flatten_errors(body: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], str]]:
    """``{"jobs": {"2": {"source": ["…"]}}}`` → ``[(("jobs", "2", "source"), "…")]``."""
    if isinstance(body, dict):
        found = []
        for key, value in body.items():
            found += flatten_errors(
                value, path if key in ("detail", "non_field_errors") else (*path, str(key))
            )
        return found
    if isinstance(body, list):
        return [item for value in body for item in flatten_errors(value, path)]
    return [(path, str(body))]


def describe(body: Any) -> str:
    return "; ".join(f"{'.'.join(p)}: {m}" if p else m for p, m in flatten_errors(body)) or "no details"


class Client:
    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = 30.0,
        on_throttle: Callable[[float, str], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.on_throttle = on_throttle
        self.sleep = sleep
        self.session = requests.Session()
        self.session.headers.update(
            {
                "Authorization": f"Bearer {token}",
                "Accept": "application/json",
                "User-Agent": f"imagesync-cli/{__version__} requests/{requests.__version__}",
                "Accept-Language": accept_language(),
            }
        )

    def request(self, method: str, path: str, *, json: Any = None, params: Any = None) -> Any:
        waited = 0.0
        while True:
            response = self._send(method, path, json=json, params=params)
            if response.status_code != 429:
                return self._answer(response)
            delay = _retry_after(response)
            if waited + delay > MAX_THROTTLE_WAIT:
                raise ApiError(
                    f"the portal kept throttling requests for {int(waited)} s; try again later", status=429
                )
            if self.on_throttle is not None:
                self.on_throttle(delay, _detail(response))
            self.sleep(delay)
            waited += delay

    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        url = f"{self.url}/api/v1/{path}"
        try:
            return self.session.request(method, url, timeout=self.timeout, allow_redirects=False, **kwargs)
        except requests.exceptions.SSLError as exc:
            raise Unreachable(f"cannot reach the portal at {self.url}: TLS error ({exc})") from exc
        except requests.exceptions.ConnectionError as exc:
            raise Unreachable(
                f"cannot reach the portal at {self.url} (connection failed). "
                "Check IMAGESYNC_URL or run imagesync login."
            ) from exc
        except requests.exceptions.Timeout as exc:
            raise Unreachable(f"the portal at {self.url} did not answer within {self.timeout:.0f} s") from exc
        except requests.exceptions.RequestException as exc:
            raise Unreachable(f"cannot talk to the portal at {self.url}: {exc}") from exc

    def _answer(self, response: requests.Response) -> Any:
        status = response.status_code
        if status == 204:
            return None
        try:
            body = response.json()
        except ValueError:
            body = None
        if body is None or 300 <= status < 400:
            raise ApiError(
                f"{self.url} answered HTTP {status} with something that is not the imagesync API "
                "(is this the portal's address?)",
                status=status,
            )
        if status == 401:
            raise AuthFailed(
                f"the portal refused the token: {describe(body)} "
                f"Create a new one on {self.url}/accounts/tokens/ and run imagesync login.",
                status=status,
                body=body,
            )
        if status >= 400:
            raise ApiError(describe(body), status=status, body=body)
        return body

    # -- endpoints --------------------------------------------------------------------------

    def me(self) -> dict[str, Any]:
        return self.request("GET", "me/")

    def namespaces(self) -> list[dict[str, Any]]:
        return self.request("GET", "namespaces/")

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", "jobs/", json=body)

    def job(self, job_id: int) -> dict[str, Any]:
        return self.request("GET", f"jobs/{job_id}/")

    def jobs(self, **params: Any) -> dict[str, Any]:
        return self.request(
            "GET", "jobs/", params={k: v for k, v in params.items() if v not in (None, [], False)}
        )

    def cancel(self, job_id: int) -> dict[str, Any]:
        return self.request("POST", f"jobs/{job_id}/cancel/")

    def retry(self, job_id: int) -> dict[str, Any]:
        return self.request("POST", f"jobs/{job_id}/retry/")

    def delete(self, job_id: int) -> None:
        self.request("DELETE", f"jobs/{job_id}/")


def accept_language() -> str:
    """The portal's messages in the user's language: zh_CN.UTF-8 → zh-CN; C or unset → en."""
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(name, "")
        if value:
            code = value.split(".", 1)[0].split("@", 1)[0].replace("_", "-")
            return "en" if code in ("C", "POSIX") or not code.isascii() else code
    return "en"


def _retry_after(response: requests.Response) -> float:
    try:
        return max(1.0, float(response.headers.get("Retry-After", "5")))
    except ValueError:
        return 5.0


def _detail(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    return describe(body) if body else ""
