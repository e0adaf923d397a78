"""Fault injection and the primary rate limit."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

FAULT_KINDS = frozenset({"status", "delay", "drop", "secondary_rate_limit"})


@dataclass
class Fault:
    """One planned misbehaviour for requests to `route` (a route name, or "*" for every API route).

    kind: "status" answers `status` (a 5xx usually); "delay" sleeps `seconds`; "drop" closes the
    connection without an answer; "secondary_rate_limit" answers `status` (429 or 403) with a
    `retry-after` header when `retry_after` is not None. `after` applies it once the request was
    carried out (a dispatch then created its run). `times` None: until cleared.
    """

    kind: str
    route: str = "*"
    method: str | None = None
    times: int | None = 1
    status: int = 502
    seconds: float = 0.0
    after: bool = False
    retry_after: int | None = None
    message: str | None = None
    fired: int = 0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {sorted(FAULT_KINDS)}")
        if self.times is not None and self.times < 1:
            raise ValueError("times must be at least 1 (or None for always)")
        if self.method:
            self.method = self.method.upper()

    def matches(self, route: str, method: str) -> bool:
        return (self.route in ("*", route)) and (self.method is None or self.method == method)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class FaultPlan:
    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> Fault:
        if fault.kind == "secondary_rate_limit" and fault.after:
            raise ValueError("a secondary rate limit refuses the request before it is carried out")
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, route: str, method: str, *, after: bool) -> list[Fault]:
        """The faults that fire for this request in this phase, each used up once."""
        fired: list[Fault] = []
        with self._lock:
            for fault in list(self._faults):
                if fault.after != after or not fault.matches(route, method):
                    continue
                fault.fired += 1
                fired.append(fault)
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times == 0:
                        self._faults.remove(fault)
        return fired

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)


class RateLimiter:
    """GitHub's primary limit for one token: `limit` requests per `window` seconds."""

    def __init__(self, limit: int = 5000, window: float = 3600.0, resource: str = "core") -> None:
        self.limit = limit
        self.window = window
        self.resource = resource
        self._lock = threading.Lock()
        self.used = 0
        self.reset_at = time.time() + window

    def _roll(self, now: float) -> None:
        if now >= self.reset_at:
            self.used = 0
            self.reset_at = now + self.window

    def exhausted(self) -> bool:
        with self._lock:
            self._roll(time.time())
            return self.used >= self.limit

    def count(self) -> None:
        with self._lock:
            self._roll(time.time())
            self.used = min(self.limit, self.used + 1)

    def exhaust(self, reset_in: float) -> None:
        with self._lock:
            self.used = self.limit
            self.reset_at = time.time() + reset_in

    def reset(self) -> None:
        with self._lock:
            self.used = 0
            self.reset_at = time.time() + self.window

    def snapshot(self) -> dict[str, int | str]:
        with self._lock:
            self._roll(time.time())
            return {
                "limit": self.limit,
                "remaining": max(0, self.limit - self.used),
                "used": self.used,
                "reset": math.ceil(self.reset_at),
                "resource": self.resource,
            }

    def headers(self) -> dict[str, str]:
        state = self.snapshot()
        return {f"x-ratelimit-{key}": str(value) for key, value in state.items()}
