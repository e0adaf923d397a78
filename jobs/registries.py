"""Destination registries: what a host is, and the names ACR and GitHub accept.

Pure Python, so forms, models, commands and the API share one set of rules.
"""

from __future__ import annotations

import re
from enum import StrEnum

from django.utils.translation import gettext_lazy as _

# A host name or IPv4/IPv6 literal with an optional port, as the reference grammar allows.
_HOST_RE = re.compile(
    r"(?:(?:[a-z0-9]|[a-z0-9][a-z0-9-]*[a-z0-9])(?:\.(?:[a-z0-9]|[a-z0-9][a-z0-9-]*[a-z0-9]))*"
    r"|\[[a-f0-9:]+\])(?::[0-9]{1,5})?",
    re.ASCII,
)

# Naming rule shown by the ACR console when a namespace is created: 2-30 characters, lower case
# letters and digits, '_' or '-' as separators but not first or last. It must also be a valid
# path component of an image reference, which forbids separators side by side such as "_-".
_NAMESPACE_RE = re.compile(r"[a-z0-9](?:[a-z0-9]|_(?=[a-z0-9])|__(?=[a-z0-9])|-+(?=[a-z0-9]))*", re.ASCII)

# https://docs.github.com/en/actions/security-for-github-actions/security-guides/using-secrets-in-github-actions#naming-your-secrets
_SECRET_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)


class RegistryKind(StrEnum):
    ACR_PERSONAL = "acr-personal"
    ACR_PERSONAL_INSTANCE = "acr-personal-instance"
    ACR_ENTERPRISE = "acr-enterprise"
    OTHER = "other"


KIND_LABELS = {
    RegistryKind.ACR_PERSONAL: _("Aliyun ACR, personal edition"),
    RegistryKind.ACR_PERSONAL_INSTANCE: _("Aliyun ACR, personal edition instance"),
    RegistryKind.ACR_ENTERPRISE: _("Aliyun ACR, enterprise edition"),
    RegistryKind.OTHER: _("Other registry"),
}

_REGION = r"(?P<region>[a-z]{2}-[a-z0-9-]+?)"
_ACR_PATTERNS = [
    # registry.cn-hangzhou.aliyuncs.com, registry-vpc.…, registry-internal.…
    (RegistryKind.ACR_PERSONAL, re.compile(rf"registry(?P<net>-vpc|-internal)?\.{_REGION}\.aliyuncs\.com", re.ASCII)),
    # crpi-<id>.cn-hangzhou.personal.cr.aliyuncs.com and crpi-<id>-vpc.…
    (
        RegistryKind.ACR_PERSONAL_INSTANCE,
        re.compile(rf"crpi-[a-z0-9]+(?P<net>-vpc)?\.{_REGION}\.personal\.cr\.aliyuncs\.com", re.ASCII),
    ),
    # <instance>-registry.cn-hangzhou.cr.aliyuncs.com and <instance>-registry-vpc.…
    (
        RegistryKind.ACR_ENTERPRISE,
        re.compile(rf"[a-z0-9-]+-registry(?P<net>-vpc)?\.{_REGION}\.cr\.aliyuncs\.com", re.ASCII),
    ),
]


class RegistryInfo:
    """What imagesync can tell about a registry host from its name alone."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.kind = RegistryKind.OTHER
        self.region = ""
        self.internal = False
        bare = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        for kind, pattern in _ACR_PATTERNS:
            match = pattern.fullmatch(bare)
            if match:
                self.kind = kind
                self.region = match["region"]
                self.internal = bool(match["net"])
                break

    @property
    def is_aliyun(self) -> bool:
        return self.kind != RegistryKind.OTHER

    @property
    def label(self) -> str:
        label = str(KIND_LABELS[self.kind])
        if self.region:
            label = f"{label} ({self.region})"
        if self.internal:
            label = f"{label}, {_('VPC network only')}"
        return label


def normalise_host(value: str) -> str:
    return value.strip().lower()


def host_error(host: str) -> str | None:
    """Why ``host`` cannot be a registry host, or None when it can."""
    if not host:
        return str(_("Enter the registry host, e.g. registry.cn-hangzhou.aliyuncs.com."))
    if "://" in host or "/" in host:
        return str(_("Enter only the host name (and port), without https:// or a path."))
    if len(host) > 253 or not _HOST_RE.fullmatch(host):
        return str(_("“%(host)s” is not a valid host name.") % {"host": host})
    if ":" in host and not host.endswith("]"):
        port = int(host.rsplit(":", 1)[1])
        if not 0 < port < 65536:
            return str(_("The port must be between 1 and 65535."))
    return None


def namespace_error(name: str) -> str | None:
    if not 2 <= len(name) <= 30:
        return str(_("A namespace name is 2 to 30 characters long."))
    if not _NAMESPACE_RE.fullmatch(name):
        return str(
            _(
                "A namespace name uses lower case letters and digits, with single '_' or '-' "
                "between them (not at the start or end)."
            )
        )
    return None


def secret_name_error(name: str) -> str | None:
    if not name:
        return str(_("Enter the name of the GitHub secret."))
    if len(name) > 100 or not _SECRET_RE.fullmatch(name):
        return str(
            _(
                "A GitHub secret name uses only letters, digits and '_', and cannot start with "
                "a digit."
            )
        )
    if name.upper().startswith("GITHUB_"):
        return str(_("A GitHub secret name cannot start with GITHUB_."))
    return None
