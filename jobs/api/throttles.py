"""Request limits, kept in the default cache (Redis when REDIS_URL is set, so every web process agrees).

Rates come from ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` (``API_RATE``,
``API_JOB_CREATE_RATE``) and are read on each request, so a settings change (or a test) takes
effect without a restart.

Each limit is a sliding window: the times of the requests (or job creations) of the last
period. DRF's own throttles read the list, then write it back, so two requests in the same
instant could both take the last place. Here, with Redis, checking and taking places is one
Lua script over a sorted set, so concurrent requests cannot exceed the limit; without Redis
(the embedded default: one process, a local-memory cache) a lock in the process does the same.
"""

from __future__ import annotations

import threading
import uuid
from typing import TYPE_CHECKING, Any

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.exceptions import ValidationError
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from accounts.models import ApiToken

if TYPE_CHECKING:  # rest_framework.views reads the throttle setting while it is imported
    from rest_framework.request import Request
    from rest_framework.views import APIView

# KEYS[1]: the window; ARGV: now, period (s), limit, places wanted, id of this reservation.
# Answers {1, ""} when the places were taken, else {0, seconds until there is room}.
_TAKE = """
local now, period, limit, wanted = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - period)
local held = redis.call('ZCARD', KEYS[1])
if held + wanted > limit then
  local freeing = redis.call('ZRANGE', KEYS[1], held + wanted - limit - 1, held + wanted - limit - 1, 'WITHSCORES')
  -- A taker whose clock read a little earlier than another's may see an event 'from the future'.
  return {0, tostring(math.min(period, period - (now - tonumber(freeing[2]))))}
end
for i = 1, wanted do
  redis.call('ZADD', KEYS[1], now, ARGV[5] .. ':' .. i)
end
redis.call('EXPIRE', KEYS[1], math.ceil(period))
return {1, ''}
"""
_local_lock = threading.Lock()


class Window:
    """The events of the last ``period`` seconds under one cache key, at most ``limit`` of them."""

    def __init__(self, key: str, limit: int, period: float) -> None:
        self.key, self.limit, self.period = key, limit, period

    def take(self, wanted: int, now: float) -> tuple[str | None, float]:
        """Take ``wanted`` places at ``now`` if they are free: ``(reservation, 0)``, else
        ``(None, seconds until enough of them are)``. ``wanted`` must not exceed the limit."""
        reservation = uuid.uuid4().hex
        cache = caches["default"]
        if isinstance(cache, RedisCache):
            take = cache._cache.get_client(write=True).register_script(_TAKE)  # EVALSHA, loading it once
            taken, wait = take(keys=[cache.make_key(self.key)], args=[now, self.period, self.limit, wanted, reservation])
            return (reservation, 0.0) if int(taken) else (None, float(wait))
        with _local_lock:
            events = [event for event in cache.get(self.key, []) if event[0] > now - self.period]
            if len(events) + wanted > self.limit:
                events.sort()
                freeing = events[len(events) + wanted - self.limit - 1][0]
                return None, min(self.period, self.period - (now - freeing))
            events += [(now, f"{reservation}:{i}") for i in range(1, wanted + 1)]
            cache.set(self.key, events, int(self.period) + 1)
        return reservation, 0.0

    def give_back(self, reservation: str, places: int) -> None:
        """Free ``places`` of the places ``reservation`` took (the job creations that did not happen)."""
        if places <= 0:
            return
        members = [f"{reservation}:{i}" for i in range(1, places + 1)]
        cache = caches["default"]
        if isinstance(cache, RedisCache):
            cache._cache.get_client(write=True).zrem(cache.make_key(self.key), *members)
            return
        with _local_lock:
            events = [event for event in cache.get(self.key, []) if event[1] not in members]
            cache.set(self.key, events, int(self.period) + 1)


class _WindowThrottle(SimpleRateThrottle):
    """A DRF throttle over a ``Window``: ``wanted`` places per request (1 unless said otherwise)."""

    # Not DRF's "throttle_…": its keys held a pickled list, and a Redis command for a sorted set
    # on such a key fails (WRONGTYPE) while a process of the previous release still writes them.
    cache_format = "throttle_window_%(scope)s_%(ident)s"

    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def window(self, request: Request, view: APIView) -> Window | None:
        key = self.get_cache_key(request, view)
        return None if key is None or self.rate is None else Window(key, self.num_requests, self.duration)

    def places_wanted(self, view: APIView) -> int:
        return 1

    def allow_request(self, request: Request, view: APIView) -> bool:
        window = self.window(request, view)
        if window is None:
            return True
        wanted = self.places_wanted(view)
        reservation, self.seconds_to_wait = window.take(wanted, self.timer())
        if reservation is not None:
            self.taken(view, window, reservation, wanted)
        return reservation is not None

    def taken(self, view: APIView, window: Window, reservation: str, wanted: int) -> None:
        pass

    def wait(self) -> float | None:
        # At least 1 s: DRF omits Retry-After for a wait that rounds to 0.
        return max(1.0, self.seconds_to_wait)


class ApiRateThrottle(_WindowThrottle):
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


class JobCreateThrottle(_WindowThrottle):
    """Job creations per user, counted in jobs actually created (a batch of 3 uses 3).

    A request takes a place for every job it asks for (``view.jobs_wanted()``) before anything
    is created; the view then calls ``settle`` with the number it created, which gives the
    other places back, so refused or deduplicated submissions cost nothing.
    """

    scope = "job_create"

    def get_cache_key(self, request: Request, view: APIView) -> str:
        return self.cache_format % {"scope": self.scope, "ident": f"user:{request.user.pk}"}

    def places_wanted(self, view: APIView) -> int:
        wanted = max(1, view.jobs_wanted())  # type: ignore[attr-defined]
        if wanted > self.num_requests:  # it would never fit: say so instead of "wait"
            raise ValidationError(
                {
                    "jobs": [
                        f"this portal allows {self.num_requests} job creations per {self.duration} s, "
                        f"so a batch may hold at most {self.num_requests} jobs"
                    ]
                }
            )
        return wanted

    def taken(self, view: APIView, window: Window, reservation: str, wanted: int) -> None:
        view.creation_places = (window, reservation, wanted)  # type: ignore[attr-defined]

    @staticmethod
    def settle(view: Any, created: int) -> None:
        """Give back the places taken for this request but not used by a created job."""
        places = getattr(view, "creation_places", None)
        if places is not None:
            window, reservation, wanted = places
            window.give_back(reservation, wanted - min(created, wanted))
            view.creation_places = None
