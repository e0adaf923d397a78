"""Request limits, kept in the default cache (Redis when REDIS_URL is set, so every web process agrees).

Rates come from ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` and are read on each request, so a
settings change (or a test) takes effect without a restart. Like all DRF throttles these are
not atomic: two requests in the same instant may both pass the last slot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from accounts.models import ApiToken

if TYPE_CHECKING:  # rest_framework.views reads the throttle setting while it is imported
    from rest_framework.request import Request
    from rest_framework.views import APIView


class _SettingsRate(SimpleRateThrottle):
    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)


class ApiRateThrottle(_SettingsRate):
    """Every API request: per token; per user for a browser session; per address when anonymous."""

    scope = "api"

    def get_cache_key(self, request: Request, view: APIView) -> str:
        if isinstance(request.auth, ApiToken):
            ident = f"token:{request.auth.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"addr:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class JobCreateThrottle(_SettingsRate):
    """Job creations per user, counted in jobs actually created (a batch of 3 uses 3).

    ``allow_request`` only checks that ``wanted`` more jobs fit; the view calls ``record``
    with the number it created, so refused or deduplicated submissions cost nothing here.
    """

    scope = "job_create"

    def get_cache_key(self, request: Request, view: APIView) -> str:
        return self.cache_format % {"scope": self.scope, "ident": f"user:{request.user.pk}"}

    def allow_request(self, request: Request, view: APIView) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        self.history = self.cache.get(self.key, [])
        self.now = self.timer()
        while self.history and self.history[-1] <= self.now - self.duration:
            self.history.pop()
        self.wanted = min(getattr(view, "jobs_wanted", 1), self.num_requests)
        return len(self.history) + self.wanted <= self.num_requests

    def wait(self) -> float | None:
        # Until enough of the oldest creations leave the window to make room for ``wanted``.
        excess = len(self.history) + self.wanted - self.num_requests
        if excess <= 0 or not self.history:
            return None
        oldest_to_expire = self.history[len(self.history) - excess]
        # At least 1 s: DRF omits Retry-After for a wait that rounds to 0.
        return max(1.0, self.duration - (self.now - oldest_to_expire))

    @classmethod
    def record(cls, request: Request, view: APIView, count: int) -> None:
        throttle = cls()
        if throttle.rate is None or count <= 0:
            return
        key = throttle.get_cache_key(request, view)
        now = throttle.timer()
        history: list[Any] = [t for t in throttle.cache.get(key, []) if t > now - throttle.duration]
        history[:0] = [now] * count
        throttle.cache.set(key, history, throttle.duration)
