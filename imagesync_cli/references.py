"""A local check of image references, so a typo is refused before any request.

The grammar is distribution/reference's (the portal checks again, with its full parser):
``[host[:port]/]path[:tag][@digest]``; the first component is a host only if it contains '.' or
':' or is ``localhost``; path components are lower-case ``[a-z0-9]+`` joined by '.', '_', '__'
or '-'+. fullmatch and re.ASCII: '$' would accept a trailing newline, and \\w is not ASCII.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
HOST_RE = re.compile(rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?", re.ASCII)
COMPONENT_RE = re.compile(_COMPONENT, re.ASCII)
_REMAINDER_RE = re.compile(
    rf"(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[a-f0-9]{64}|sha384:[a-f0-9]{96}|sha512:[a-f0-9]{128}))?",
    re.ASCII,
)


class InvalidReference(ValueError):
    pass


@dataclass(frozen=True)
class Reference:
    host: str | None
    path: str
    tag: str | None
    digest: str | None

    @property
    def components(self) -> list[str]:
        return self.path.split("/")


def is_host(component: str) -> bool:
    return "." in component or ":" in component or component == "localhost"


def parse(text: str) -> Reference:
    """Check ``text`` against the grammar; the message says what is wrong."""
    if not text:
        raise InvalidReference("it is empty")
    bad = next((ch for ch in text if not " " < ch < "\x7f"), None)
    if bad is not None:
        raise InvalidReference(f"it contains whitespace, a control or a non-ASCII character ({bad!r})")
    if len(text) > 1024:
        raise InvalidReference("it is longer than 1024 characters")
    first, slash, rest = text.partition("/")
    host = None
    if slash and is_host(first):
        host, text = first, rest
        if not HOST_RE.fullmatch(host):
            raise InvalidReference(f"{host!r} is not a valid registry host")
    match = _REMAINDER_RE.fullmatch(text)
    if match is None:
        raise InvalidReference(_why(text))
    if len(f"{host or 'docker.io'}/{match['path']}") > 255:
        raise InvalidReference("the repository name is longer than 255 characters")
    return Reference(host, match["path"], match["tag"], match["digest"])


def _why(text: str) -> str:
    name = text.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    path = name.rsplit(":", 1)[0] if ":" in last else name
    if any(c.isupper() for c in path):
        return "repository names must be lower case"
    if any(not COMPONENT_RE.fullmatch(c) for c in path.split("/")):
        return "path components are lower-case letters and digits separated by '.', '_', '__' or '-'"
    if "@" in text:
        return "a digest is sha256: followed by 64 lower-case hex digits"
    return "a tag is 1-128 letters, digits, '_', '.' or '-', and cannot start with '.' or '-'"
