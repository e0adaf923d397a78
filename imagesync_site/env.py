"""Typed readers for configuration from the environment.

Each reader fails loudly with the variable's name on a bad value, so a typo such as
``DEBUG=yes`` stops start-up instead of silently meaning something else. Secrets may also
come from ``NAME_FILE`` (a path), the usual way containers and systemd pass them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured


class ConfigError(ImproperlyConfigured):
    """A variable in the environment has a value imagesync cannot use."""


_TRUE = {"true", "1"}
_FALSE = {"false", "0"}
# What DRF's SimpleRateThrottle.parse_rate understands (int(number), then {s, m, h, d}[period[0]]),
# narrowed to plain digits and a period of letters.
_RATE_RE = re.compile(r"(?P<number>[0-9]+)/(?P<period>[smhd][A-Za-z]*)", re.ASCII)


class Env:
    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self.environ = os.environ if environ is None else environ

    def raw(self, name: str) -> str | None:
        value = self.environ.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def str(self, name: str, default: str = "") -> str:
        value = self.raw(name)
        return default if value is None else value

    def secret(self, name: str, default: str = "") -> str:
        """``NAME`` or the contents of the file named by ``NAME_FILE``."""
        value = self.raw(name)
        path = self.raw(f"{name}_FILE")
        if value is not None and path is not None:
            raise ConfigError(f"{name} and {name}_FILE are both set: set only one of them")
        if path is not None:
            try:
                with open(path, encoding="utf-8") as fh:
                    return fh.read().strip()
            except OSError as exc:
                raise ConfigError(f"{name}_FILE={path}: cannot read the file ({exc.strerror})") from exc
        return default if value is None else value

    def bool(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        raise ConfigError(f"{name}={value!r} is not a boolean: use true or false (or 1 or 0)")

    def int(self, name: str, default: int, *, minimum: int | None = None) -> int:
        value = self.raw(name)
        if value is None:
            return default
        if not re.fullmatch(r"-?[0-9]+", value, re.ASCII):
            raise ConfigError(f"{name}={value!r} is not a whole number")
        number = int(value)
        if minimum is not None and number < minimum:
            raise ConfigError(f"{name}={value!r} must be at least {minimum}")
        return number

    def rate(self, name: str, default: str) -> str:
        """A request rate in DRF's throttle format: ``<positive whole number>/<period>``.

        The period is read as DRF's ``SimpleRateThrottle.parse_rate`` reads it, by its first
        letter: ``s``econd, ``m``inute, ``h``our or ``d``ay (``60/minute``, ``60/min``, ``60/m``).
        Checked here because DRF parses the rate only when a request arrives: a bad one would
        otherwise make every API request fail instead of stopping start-up.
        """
        value = self.raw(name)
        if value is None:
            return default
        match = _RATE_RE.fullmatch(value)
        if not match or int(match["number"]) < 1:
            raise ConfigError(
                f"{name}={value!r} is not a rate: use <positive whole number>/<second|minute|hour|day> "
                "(only the period's first letter counts: 60/minute, 60/min, 60/m)"
            )
        return value

    def list(self, name: str, default: list[str] | None = None) -> list[str]:
        value = self.raw(name)
        if value is None:
            return list(default or [])
        return [item.strip() for item in value.split(",") if item.strip()]

    def url(self, name: str, default: str = "", *, schemes: tuple[str, ...]) -> str:
        value = self.raw(name)
        if value is None:
            return default
        check_url(name, value, schemes)
        return value

    def origins(self, name: str) -> list[str]:
        """A comma-separated list of ``scheme://host[:port]`` origins (CORS, CSRF)."""
        items = self.list(name)
        for item in items:
            check_url(name, item, ("http", "https"))
            parts = urlsplit(item)
            if parts.path not in ("", "/") or parts.query or parts.fragment:
                raise ConfigError(f"{name}: {item!r} is not an origin: give scheme://host[:port] only")
        return [item.rstrip("/") for item in items]


def check_url(name: str, value: str, schemes: tuple[str, ...]) -> None:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError as exc:
        raise ConfigError(f"{name}={value!r} is not a valid URL ({exc})") from exc
    if parts.scheme not in schemes:
        raise ConfigError(
            f"{name}={value!r} is not a valid URL: the scheme must be one of {', '.join(schemes)}"
        )
    if not parts.netloc and parts.scheme not in ("sqlite", "unix"):
        raise ConfigError(f"{name}={value!r} is not a valid URL: it names no host")
    if any(ch.isspace() for ch in value):
        raise ConfigError(f"{name}={value!r} is not a valid URL: it contains whitespace")


GITHUB_REPOSITORY_RE = re.compile(r"[A-Za-z0-9-]+/[A-Za-z0-9._-]+", re.ASCII)


def github_repository(env: Env, name: str) -> str:
    value = env.str(name)
    if value and not GITHUB_REPOSITORY_RE.fullmatch(value):
        raise ConfigError(f"{name}={value!r} is not a GitHub repository: use owner/repo")
    return value
