"""Where the portal is and which token to use: IMAGESYNC_URL / IMAGESYNC_TOKEN, else the config file.

The file (``imagesync login`` writes it) is JSON, ``$IMAGESYNC_CONFIG`` or
``$XDG_CONFIG_HOME/imagesync/config.json`` (default ``~/.config/imagesync/config.json``), mode 0600.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit


class ConfigError(Exception):
    pass


@dataclass(frozen=True)
class Config:
    url: str
    token: str
    path: Path


def config_path() -> Path:
    explicit = os.environ.get("IMAGESYNC_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "imagesync" / "config.json"


def check_url(url: str) -> str:
    """The portal's base URL without a trailing slash, or ConfigError saying what is wrong."""
    url = url.strip().rstrip("/")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise ConfigError(f"{url!r} is not a valid URL ({exc})") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{url!r} is not the portal's address: expected https://HOST[:PORT]")
    if parts.query or parts.fragment:
        raise ConfigError(f"{url!r}: give the portal's address without ?query or #fragment")
    return url


def read_file(path: Path) -> dict[str, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc}); run imagesync login again") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} should hold a JSON object; run imagesync login again")
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}


def load() -> Config:
    """The settings to use; the environment wins over the file, one value at a time."""
    path = config_path()
    stored = read_file(path)
    url = os.environ.get("IMAGESYNC_URL") or stored.get("url", "")
    token = os.environ.get("IMAGESYNC_TOKEN") or stored.get("token", "")
    if not url:
        raise ConfigError(
            "no portal configured: run imagesync login, or set IMAGESYNC_URL and IMAGESYNC_TOKEN"
        )
    if not token:
        raise ConfigError("no API token configured: run imagesync login, or set IMAGESYNC_TOKEN")
    return Config(url=check_url(url), token=token.strip(), path=path)


def save(url: str, token: str) -> Path:
    """Write the file readable by its owner only (it holds a secret)."""
    path = config_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    # Created 0600 from the start: never a moment when the token is readable by others.
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        if hasattr(os, "fchmod"):  # not on Windows before 3.13
            os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"url": url, "token": token}, fh, indent=2)
            fh.write("\n")
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    os.replace(temporary, path)
    return path


def remove() -> Path | None:
    path = config_path()
    try:
        path.unlink()
    except FileNotFoundError:
        return None
    return path
