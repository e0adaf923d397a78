"""`workflow_run` webhook deliveries, signed like GitHub's, sent from one background thread."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import queue
import threading
import time
import urllib.parse
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from emulator.records import utcnow

log = logging.getLogger(__name__)

USER_AGENT = "GitHub-Hookshot/e7u1a7e"


@dataclass
class Delivery:
    guid: str
    event: str
    action: str
    run_id: int | None
    run_attempt: int | None
    body: bytes = field(repr=False)
    headers: dict[str, str] = field(repr=False)
    created_at: datetime
    redelivery: bool = False
    lost: bool = False  # dropped on purpose by fault injection: never sent
    status_code: int | None = None
    error: str | None = None
    delivered_at: datetime | None = None
    duration: float | None = None
    done: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def payload(self) -> dict[str, Any]:
        text = self.body.decode()
        if self.headers.get("Content-Type") == "application/x-www-form-urlencoded":
            text = urllib.parse.parse_qs(text)["payload"][0]
        return json.loads(text)

    def to_json(self) -> dict[str, Any]:
        return {
            "guid": self.guid,
            "event": self.event,
            "action": self.action,
            "run_id": self.run_id,
            "run_attempt": self.run_attempt,
            "redelivery": self.redelivery,
            "lost": self.lost,
            "status_code": self.status_code,
            "error": self.error,
            "delivered_at": self.delivered_at.isoformat() if self.delivered_at else None,
            "duration": self.duration,
        }


def sign(secret: str, body: bytes) -> tuple[str, str]:
    """(X-Hub-Signature-256, X-Hub-Signature) values for body."""
    key = secret.encode()
    sha256 = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
    sha1 = "sha1=" + hmac.new(key, body, hashlib.sha1).hexdigest()
    return sha256, sha1


class WebhookSender:
    def __init__(
        self,
        url: str | None,
        secret: str | None,
        *,
        hook_id: int,
        target_id: int,
        timeout: float = 10.0,
        content_type: str = "json",
    ) -> None:
        if content_type not in ("json", "form"):
            raise ValueError("content_type must be 'json' or 'form'")
        self.url = url
        self.secret = secret
        self.hook_id = hook_id
        self.target_id = target_id
        self.timeout = timeout
        self.content_type = content_type
        self.deliveries: list[Delivery] = []
        self._lose_remaining = 0
        self._lose_all = False
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._queue: queue.Queue[Delivery | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.url)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="emulated-webhooks", daemon=True)
            self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None

    def lose(self, count: int | None = None) -> None:
        """Drop the next `count` deliveries, or every one from now on when count is None."""
        with self._lock:
            if count is None:
                self._lose_all = True
            else:
                self._lose_remaining = max(0, int(count))

    def restore(self) -> None:
        with self._lock:
            self._lose_all = False
            self._lose_remaining = 0

    def send(
        self,
        event: str,
        action: str,
        payload: Mapping[str, Any],
        *,
        run_id: int | None = None,
        run_attempt: int | None = None,
    ) -> Delivery | None:
        if not self.enabled:
            return None
        text = json.dumps(payload, separators=(",", ":"))
        if self.content_type == "form":
            body = urllib.parse.urlencode({"payload": text}).encode()
            content_type = "application/x-www-form-urlencoded"
        else:
            body = text.encode()
            content_type = "application/json"
        guid = str(uuid.uuid4())
        headers = {
            "Content-Type": content_type,
            "User-Agent": USER_AGENT,
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": guid,
            "X-GitHub-Hook-ID": str(self.hook_id),
            "X-GitHub-Hook-Installation-Target-Type": "repository",
            "X-GitHub-Hook-Installation-Target-ID": str(self.target_id),
        }
        if self.secret:
            headers["X-Hub-Signature-256"], headers["X-Hub-Signature"] = sign(self.secret, body)
        delivery = Delivery(guid, event, action, run_id, run_attempt, body, headers, created_at=utcnow())
        with self._lock:
            if self._lose_all or self._lose_remaining > 0:
                self._lose_remaining = max(0, self._lose_remaining - 1)
                delivery.lost = True
                delivery.done.set()
            self.deliveries.append(delivery)
            self._changed.notify_all()
        if not delivery.lost:
            self._queue.put(delivery)
        return delivery

    def redeliver(self, guid: str) -> Delivery:
        """Send a past delivery again, same body and same GUID (as GitHub's redelivery does)."""
        with self._lock:
            original = next((item for item in self.deliveries if item.guid == guid), None)
        if original is None:
            raise KeyError(guid)
        delivery = Delivery(
            original.guid,
            original.event,
            original.action,
            original.run_id,
            original.run_attempt,
            original.body,
            dict(original.headers),
            created_at=utcnow(),
            redelivery=True,
        )
        with self._lock:
            self.deliveries.append(delivery)
            self._changed.notify_all()
        self._queue.put(delivery)
        return delivery

    def wait_for(
        self, count: int, timeout: float, *, action: str | None = None, delivered: bool = True
    ) -> list[Delivery]:
        """The deliveries (optionally of one action) once at least `count` of them are finished."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                matching = [
                    item
                    for item in self.deliveries
                    if (action is None or item.action == action) and (not delivered or item.done.is_set())
                ]
                if len(matching) >= count:
                    return matching
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"only {len(matching)} of {count} webhook deliveries after {timeout} s"
                    )
                self._changed.wait(remaining)

    def _work(self) -> None:
        while True:
            delivery = self._queue.get()
            if delivery is None:
                return
            self._post(delivery)

    def _post(self, delivery: Delivery) -> None:
        assert self.url is not None
        # http.client rather than urllib: urllib re-cases header names (X-Github-Event) and
        # honours proxy variables, neither of which GitHub's sender does.
        parts = urllib.parse.urlsplit(self.url)
        connection_class = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        started = time.monotonic()
        status: int | None = None
        error: str | None = None
        connection = connection_class(parts.hostname or "localhost", parts.port, timeout=self.timeout)
        try:
            connection.request("POST", target, body=delivery.body, headers=delivery.headers)
            response = connection.getresponse()
            response.read()
            status = response.status
        except (OSError, http.client.HTTPException) as exc:
            error = f"{type(exc).__name__}: {exc}"
            log.info("webhook delivery %s failed: %s", delivery.guid, error)
        finally:
            connection.close()
        with self._lock:
            delivery.status_code = status
            delivery.error = error
            delivery.delivered_at = utcnow()
            delivery.duration = time.monotonic() - started
            delivery.done.set()
            self._changed.notify_all()
