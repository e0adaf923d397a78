"""Parse and normalise container image references: ``[domain[:port]/]path[:tag][@digest]``.

The grammar is the one of github.com/distribution/reference (regexp.go), and the
normalisation follows its ParseNormalizedNamed / splitDockerDomain and TagNameOnly:

* the first '/'-separated component is the registry only if it contains '.' or ':'
  or is ``localhost``; otherwise the registry is ``docker.io``;
* ``index.docker.io`` becomes ``docker.io``, and a single-component path on
  ``docker.io`` gets ``library/`` (``nginx`` -> ``docker.io/library/nginx:latest``);
* the tag ``latest`` is added only when there is neither a tag nor a digest, so a
  digest-only reference stays digest-only.

References are untrusted input that ends up on a command line in a workflow, so this
module refuses instead of repairing: nothing is stripped, and any whitespace, control
or non-ASCII character anywhere is an error. Every error is an ``InvalidReference``
whose message names the part that is wrong; positions in messages count from 1.

Deliberate deviations from upstream:

* The registry host is lower-cased, because host names are case-insensitive and two
  spellings of one registry must compare equal: ``Docker.io/nginx`` is
  ``docker.io/library/nginx:latest`` here, while upstream keeps ``Docker.io`` as a
  domain of its own. The ``index.docker.io`` rule is applied after lower-casing.
* Upstream takes a first component with upper-case letters and no '.' or ':'
  (``Foo/bar``) to be a registry host. Here it is refused with "repository names
  must be lower case": a registry is recognised by '.', ':' or ``localhost``, not
  by capitalisation, and the user almost certainly meant a Docker Hub namespace.
* Only the digest algorithms go-digest registers are accepted: sha256, sha384 and
  sha512, with exactly 64, 96 or 128 lower-case hex digits.

Kept as upstream, stated because they are easy to get wrong:

* A bare 64-character lower-case hex string is refused (it is an image ID, not a
  name: "cannot specify 64-byte hexadecimal strings"). With a tag, digest or
  namespace it is an ordinary name, as upstream.
* The 255-character limit applies to the normalised name (``domain/path``, e.g.
  ``docker.io/library/nginx``). ``Parse`` counts the name as written, but
  ParseNormalizedNamed calls it on the normalised string, so that is what upstream
  effectively enforces; it also guarantees that ``str()`` of every accepted
  reference parses again.
* The port is any run of digits; its numeric range is not checked.
* A reference may carry both a tag and a digest. Both are kept and ``str()`` gives
  ``name:tag@digest``. Callers must decide what that means: skopeo refuses such a
  reference, and Docker's ParseDockerRef drops the tag.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import NoReturn

__all__ = [
    "DEFAULT_DOMAIN",
    "DEFAULT_TAG",
    "NAME_TOTAL_LENGTH_MAX",
    "ImageRef",
    "InvalidReference",
    "parse_reference",
]

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPO_PREFIX = "library/"
LOCALHOST = "localhost"
DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255
# Above the longest valid input ("index." + 255-character name, ':' + 128-character
# tag, '@' + sha512 digest is about 530 characters). Refusing early keeps the
# per-character scan and the regular expressions cheap on hostile input.
MAX_INPUT_LENGTH = 1024

DIGEST_HEX_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}

_ALPHANUMERIC = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|-+)"
_PATH_COMPONENT = rf"{_ALPHANUMERIC}(?:{_SEPARATOR}{_ALPHANUMERIC})*"
_PATH = rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_DOMAIN_NAME_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = rf"{_DOMAIN_NAME_COMPONENT}(?:\.{_DOMAIN_NAME_COMPONENT})*"
_IPV6_ADDRESS = r"\[[a-fA-F0-9:]+\]"
_HOST = rf"(?:{_DOMAIN_NAME}|{_IPV6_ADDRESS})"
_PORT = r"[0-9]+"
_DOMAIN = rf"{_HOST}(?::{_PORT})?"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = "(?:" + "|".join(f"{alg}:[a-f0-9]{{{n}}}" for alg, n in DIGEST_HEX_LENGTHS.items()) + ")"
# A normalised reference always has a domain, so the domain is not optional here.
_NORMALISED_REFERENCE = rf"{_DOMAIN}/{_PATH}(?::{_TAG})?(?:@{_DIGEST})?"

# Always used with fullmatch(): Python's '$' also matches before a trailing newline.
_PATH_COMPONENT_RE = re.compile(_PATH_COMPONENT, re.ASCII)
_PATH_RE = re.compile(_PATH, re.ASCII)
_HOST_RE = re.compile(_HOST, re.ASCII)
_PORT_RE = re.compile(_PORT, re.ASCII)
_DOMAIN_RE = re.compile(_DOMAIN, re.ASCII)
_TAG_RE = re.compile(_TAG, re.ASCII)
_DIGEST_RE = re.compile(_DIGEST, re.ASCII)
_IDENTIFIER_RE = re.compile(r"[a-f0-9]{64}", re.ASCII)
_NORMALISED_REFERENCE_RE = re.compile(_NORMALISED_REFERENCE, re.ASCII)

_TAG_RULE = (
    "a tag is 1-128 characters of letters, digits, '_', '.', '-' and cannot start with '.' or '-'"
)
_PATH_COMPONENT_RULE = (
    "path components are lower case letters and digits, separated by '.', '_', '__' or '-'"
)
_HOST_RULE = (
    "a registry host is '.'-separated labels of letters, digits and '-' (a label cannot "
    "start or end with '-'), or an IPv6 address in brackets, optionally followed by ':port'"
)


class InvalidReference(ValueError):
    """An image reference that does not follow the grammar; the message says which part."""


@dataclass(frozen=True, slots=True)
class ImageRef:
    """A validated, fully normalised image reference.

    Constructing one directly is checked as well, so every instance satisfies
    ``parse_reference(str(ref)) == ref``.
    """

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    def __post_init__(self) -> None:
        _check_normalised(self)

    def __str__(self) -> str:
        text = self.name
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text

    @property
    def name(self) -> str:
        return f"{self.domain}/{self.path}"

    @property
    def repository(self) -> str:
        return self.name

    @property
    def last_component(self) -> str:
        return self.path.rpartition("/")[2]

    def with_tag(self, tag: str) -> ImageRef:
        """The same repository with ``tag`` and no digest (the digest named other content)."""
        _check_tag(tag)
        return ImageRef(self.domain, self.path, tag, None)


def parse_reference(text: str) -> ImageRef:
    """Validate ``text`` and return it normalised; raise ``InvalidReference`` otherwise."""
    if not isinstance(text, str):
        raise InvalidReference(f"image reference must be a string, not {type(text).__name__}")
    if text == "":
        raise InvalidReference("empty image reference")
    if len(text) > MAX_INPUT_LENGTH:
        raise InvalidReference(
            f"image reference is longer than {MAX_INPUT_LENGTH} characters ({len(text)})"
        )
    _check_characters(text)
    if _IDENTIFIER_RE.fullmatch(text):
        raise InvalidReference(
            f"invalid repository name {_quote(text)}: cannot specify 64-byte hexadecimal strings "
            "(that is an image ID, not a repository name)"
        )

    # Neither the name nor the tag may contain '@', so the first one starts the digest.
    name_and_tag, at_sign, digest = text.partition("@")
    # A ':' before the last '/' belongs to a registry port, so the tag starts at the
    # first ':' after it; any further ':' then makes the tag invalid.
    tag_colon = name_and_tag.find(":", name_and_tag.rfind("/") + 1)
    if tag_colon == -1:
        name, tag = name_and_tag, None
    else:
        name, tag = name_and_tag[:tag_colon], name_and_tag[tag_colon + 1 :]

    if name == "":
        raise InvalidReference("repository name is empty")
    domain, path = _split_domain(name)
    if domain is None:
        domain = DEFAULT_DOMAIN
    else:
        domain = _check_domain(domain)
        if domain == LEGACY_DEFAULT_DOMAIN:
            domain = DEFAULT_DOMAIN
    _check_path(path, name)
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = OFFICIAL_REPO_PREFIX + path
    full_name = f"{domain}/{path}"
    if len(full_name) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidReference(
            f"repository name is longer than {NAME_TOTAL_LENGTH_MAX} characters "
            f"({len(full_name)} once normalised to {_quote(full_name)})"
        )

    if tag is not None:
        _check_tag(tag)
    if at_sign:
        _check_digest(digest)
    else:
        digest = None
    if tag is None and digest is None:
        tag = DEFAULT_TAG
    return ImageRef(domain, path, tag, digest)


def _quote(text: str, limit: int = 80) -> str:
    # Only called on text that passed _check_characters, so echoing it is safe; the
    # limit keeps messages readable.
    if len(text) > limit:
        text = text[:limit] + "..."
    return f"'{text}'"


def _check_characters(text: str) -> None:
    for position, char in enumerate(text, start=1):
        if " " < char < "\x7f":
            continue
        if char.isspace() or unicodedata.category(char)[0] in "CZ":
            raise InvalidReference(
                "image reference contains whitespace or a control character "
                f"at position {position}"
            )
        # Not echoed: look-alikes such as fullwidth digits are the point of refusing them.
        raise InvalidReference(
            f"image reference contains a non-ASCII character (U+{ord(char):04X}) at position "
            f"{position}: image references are ASCII only"
        )


def _split_domain(name: str) -> tuple[str | None, str]:
    first, slash, rest = name.partition("/")
    if not slash:
        return None, name
    if "." in first or ":" in first or first == LOCALHOST:
        return first, rest
    if first.lower() != first:
        raise InvalidReference(
            f"repository name {_quote(name)} is invalid: repository names must be lower case "
            f"({_quote(first)} is not taken as a registry host: a host contains '.' or ':port', "
            "or is 'localhost')"
        )
    return None, name


def _check_domain(domain: str) -> str:
    """Validate ``host[:port]`` and return it lower-cased."""
    if domain.startswith("["):
        close = domain.find("]")
        host, rest = (domain, "") if close == -1 else (domain[: close + 1], domain[close + 1 :])
    else:
        host, colon, port = domain.partition(":")
        rest = colon + port
    if not _HOST_RE.fullmatch(host):
        raise InvalidReference(f"registry host {_quote(host)} is invalid: {_HOST_RULE}")
    if rest:
        if not rest.startswith(":"):
            raise InvalidReference(f"registry host {_quote(domain)} is invalid: {_HOST_RULE}")
        if not _PORT_RE.fullmatch(rest[1:]):
            raise InvalidReference(
                f"registry port {_quote(rest[1:])} of {_quote(domain)} is invalid: "
                "the registry port must be digits"
            )
    return domain.lower()


def _check_path(path: str, name: str) -> None:
    for component in path.split("/"):
        if component == "":
            raise InvalidReference(
                f"repository name {_quote(name)} has an empty path component "
                "(a leading, trailing or doubled '/')"
            )
        if not _PATH_COMPONENT_RE.fullmatch(component):
            raise InvalidReference(
                f"repository path component {_quote(component)} is invalid: {_PATH_COMPONENT_RULE}"
            )


def _check_tag(tag: str) -> None:
    if tag == "":
        raise InvalidReference(f"tag is empty after ':': {_TAG_RULE}")
    if not _TAG_RE.fullmatch(tag):
        raise InvalidReference(f"tag {_quote(tag)} is invalid: {_TAG_RULE}")


def _check_digest(digest: str) -> None:
    if digest == "":
        raise InvalidReference(
            "digest is empty after '@': expected sha256: followed by 64 lower-case hex digits"
        )
    algorithm, colon, encoded = digest.partition(":")
    if not colon:
        raise InvalidReference(
            f"digest {_quote(digest)} is invalid: expected sha256: followed by "
            "64 lower-case hex digits"
        )
    length = DIGEST_HEX_LENGTHS.get(algorithm)
    if length is None:
        raise InvalidReference(
            f"digest algorithm {_quote(algorithm)} is not supported: "
            f"expected one of {', '.join(DIGEST_HEX_LENGTHS)}"
        )
    if not _DIGEST_RE.fullmatch(digest):
        raise InvalidReference(
            f"digest {_quote(digest)} is invalid: expected {algorithm}: followed by "
            f"{length} lower-case hex digits"
        )


def _check_normalised(ref: ImageRef) -> None:
    # The last line of defence: whatever the stepwise checks in parse_reference let
    # through, or whatever a caller builds by hand, must be grammatical and normalised.
    def refuse(reason: str) -> NoReturn:
        raise InvalidReference(f"not a valid normalised image reference: {reason}")

    for field, value in (("domain", ref.domain), ("path", ref.path)):
        if not isinstance(value, str):
            refuse(f"{field} must be a string")
    for field, value in (("tag", ref.tag), ("digest", ref.digest)):
        if value is not None and not isinstance(value, str):
            refuse(f"{field} must be a string or None")
    domain = ref.domain
    if not _DOMAIN_RE.fullmatch(domain):
        refuse("invalid registry host")
    if domain != domain.lower():
        refuse("the registry host must be lower case")
    if not ("." in domain or ":" in domain or domain == LOCALHOST):
        refuse("the registry host must contain '.' or ':port', or be 'localhost'")
    if domain == LEGACY_DEFAULT_DOMAIN:
        refuse(f"{LEGACY_DEFAULT_DOMAIN} must be written {DEFAULT_DOMAIN}")
    if not _PATH_RE.fullmatch(ref.path):
        refuse("invalid repository path")
    if domain == DEFAULT_DOMAIN and "/" not in ref.path:
        refuse(f"a single-component Docker Hub path needs the {OFFICIAL_REPO_PREFIX!r} prefix")
    if len(ref.name) > NAME_TOTAL_LENGTH_MAX:
        refuse(f"repository name is longer than {NAME_TOTAL_LENGTH_MAX} characters")
    if ref.tag is None and ref.digest is None:
        refuse("a tag or a digest is required")
    if ref.tag is not None and not _TAG_RE.fullmatch(ref.tag):
        refuse("invalid tag")
    if ref.digest is not None and not _DIGEST_RE.fullmatch(ref.digest):
        refuse("invalid digest")
    if not _NORMALISED_REFERENCE_RE.fullmatch(str(ref)):
        refuse("does not match the reference grammar")
