"""Service and parser messages in the user's language.

``jobs.services`` and ``jobs.references`` speak plain English, because the same messages go to
the API, the CLI and the logs. The portal shows them in the user's language: each known message
shape is matched here and rebuilt from a translatable template with the parts it quoted. A
message that matches nothing is shown as it is, which is still a clear (English) answer.
"""

from __future__ import annotations

import re

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

# The rules references.py appends after a colon; matched first so that their translation can
# stand in for the English tail of any message that quotes them.
_RULES: list[tuple[str, Promise]] = [
    (
        "a tag is 1-128 characters of letters, digits, '_', '.', '-' and cannot start with '.' or '-'",
        _("a tag is 1–128 letters, digits, '_', '.' or '-', and cannot start with '.' or '-'"),
    ),
    (
        "path components are lower case letters and digits, separated by '.', '_', '__' or '-'",
        _("each part of a repository path is lower-case letters and digits, separated by '.', '_', '__' or '-'"),
    ),
    (
        (
            "a registry host is '.'-separated labels of letters, digits and '-' (a label cannot "
            "start or end with '-'), or an IPv6 address in brackets, optionally followed by ':port'"
        ),
        _(
            "a registry host is labels of letters, digits and '-' joined by '.' (a label cannot start "
            "or end with '-'), or an IPv6 address in brackets, optionally followed by ':port'"
        ),
    ),
]

_Q = r"'(?P<{}>.*)'"  # references.py quotes the parts it names in single quotes

_PATTERNS: list[tuple[re.Pattern[str], Promise]] = [
    (re.compile(p, re.DOTALL), template)
    for p, template in [
        # -- jobs/references.py --------------------------------------------------------------
        (r"empty image reference", _("The image reference is empty.")),
        (
            r"image reference is longer than (?P<limit>\d+) characters \((?P<length>\d+)\)",
            _("The image reference is too long: %(length)s characters, at most %(limit)s."),
        ),
        (
            r"image reference contains whitespace or a control character at position (?P<pos>\d+)",
            _("The image reference contains a space, line break or control character at position %(pos)s."),
        ),
        (
            r"image reference contains a non-ASCII character \((?P<code>U\+[0-9A-F]+)\) at position (?P<pos>\d+).*",
            _(
                "The image reference contains a non-ASCII character (%(code)s) at position %(pos)s: "
                "image references are ASCII only (watch out for full-width characters)."
            ),
        ),
        (
            r"invalid repository name " + _Q.format("name") + r": cannot specify 64-byte hexadecimal strings.*",
            _("'%(name)s' looks like an image ID, not a repository name."),
        ),
        (r"repository name is empty", _("The repository name is missing.")),
        (
            r"repository name is longer than (?P<limit>\d+) characters \((?P<length>\d+) once normalised to .*\)",
            _("The repository name is too long: %(length)s characters with its registry, at most %(limit)s."),
        ),
        (
            r"repository name " + _Q.format("name") + r" is invalid: repository names must be lower case.*",
            _(
                "Repository name '%(name)s': repository names must be lower case (a first part with capitals "
                "is not taken as a registry host; a host contains '.' or ':port', or is 'localhost')."
            ),
        ),
        (
            r"registry host " + _Q.format("host") + r" is invalid: (?P<rule>.*)",
            _("Registry host '%(host)s' is invalid: %(rule)s."),
        ),
        (
            r"registry port " + _Q.format("port") + r" of '.*' is invalid: the registry port must be digits",
            _("Registry port '%(port)s' is invalid: a port is digits only."),
        ),
        (
            r"repository name " + _Q.format("name") + r" has an empty path component.*",
            _("Repository name '%(name)s' has an empty part (a leading, trailing or doubled '/')."),
        ),
        (
            r"repository path component " + _Q.format("part") + r" is invalid: (?P<rule>.*)",
            _("Repository path part '%(part)s' is invalid: %(rule)s."),
        ),
        (r"tag is empty after ':': (?P<rule>.*)", _("The tag after ':' is empty: %(rule)s.")),
        (r"tag " + _Q.format("tag") + r" is invalid: (?P<rule>.*)", _("Tag '%(tag)s' is invalid: %(rule)s.")),
        (
            r"digest is empty after '@'.*",
            _("The digest after '@' is empty: expected sha256: followed by 64 lower-case hex digits."),
        ),
        (
            r"digest algorithm " + _Q.format("alg") + r" is not supported: expected one of (?P<known>.*)",
            _("Digest algorithm '%(alg)s' is not supported: use one of %(known)s."),
        ),
        (
            r"digest " + _Q.format("digest") + r" is invalid: expected (?P<alg>\S+) followed by (?P<n>\d+) lower-case hex digits",
            _("Digest '%(digest)s' is invalid: expected %(alg)s followed by %(n)s lower-case hex digits."),
        ),
        (r"not a valid normalised image reference: .*", _("The image reference is invalid.")),
        # -- jobs/services.py: job_create -----------------------------------------------------
        (r"kind must be one of .*", _("Choose copy one tag or sync all tags.")),
        (r"you may not push to (?P<ns>.+)", _("You may not push to %(ns)s.")),
        (
            r"a sync always goes to (?P<dest>\S+); leave the destination empty",
            _("A sync always goes to %(dest)s: leave the destination empty."),
        ),
        (
            r"a source pinned by digest needs a destination with a tag",
            _("A source pinned by digest needs a destination with a tag, e.g. namespace/name:tag."),
        ),
        (r"the destination must be in (?P<registry>\S+)", _("The destination must be in %(registry)s.")),
        (r"the destination takes a tag, not a digest", _("The destination takes a tag, not a digest.")),
        (
            r"the destination must be inside the namespace (?P<ns>\S+)",
            _("The destination must be inside the namespace %(ns)s, as namespace/name:tag."),
        ),
        (
            r"ACR repositories are one level deep: use namespace/name:tag",
            _("ACR repositories are one level deep: use namespace/name:tag."),
        ),
        (r"tag filters apply to a sync, not to a copy", _("Tag filters apply to a sync, not to a copy.")),
        (r"a tag filter is at most (?P<n>\d+) characters", _("A tag filter is at most %(n)s characters.")),
        (
            r"a tag filter cannot contain line breaks or control characters",
            _("A tag filter cannot contain line breaks or control characters."),
        ),
        (
            r"not a valid regular expression: (?P<detail>.*)",
            _("Not a valid regular expression: %(detail)s."),
        ),
        (
            r"(?P<ns>\S+) is full: (?P<used>\d+) of (?P<quota>\d+) repositories are used; .*",
            _(
                "%(ns)s is full: %(used)s of %(quota)s repositories are used. Ask an administrator to "
                "raise the quota, or remove repositories."
            ),
        ),
        # -- jobs/services.py: actions ----------------------------------------------------------
        (r"the job has already finished \((?P<status>\w+)\)", _("The job has already finished.")),
        (r"the job kept changing; try again", _("The job kept changing; please try again.")),
        (
            r"only a failed, cancelled or errored job can be retried, not a (?P<status>\w+) one",
            _("Only a failed, cancelled or errored job can be retried."),
        ),
        (
            r"only a finished job can be deleted; cancel it first",
            _("Only a finished job can be deleted: cancel it first."),
        ),
    ]
]


def _rule(text: str) -> str:
    for english, translated in _RULES:
        if text == english:
            return str(translated)
    return text


def localise(message: str) -> str:
    """``message`` from the services or the parser, in the active language when known."""
    for pattern, template in _PATTERNS:
        match = pattern.fullmatch(message)
        if match:
            parts = {key: _rule(value) if key == "rule" else value for key, value in match.groupdict().items()}
            return str(template) % parts if parts else str(template)
    return message
