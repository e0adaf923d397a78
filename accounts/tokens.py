"""API tokens: make them, check them, revoke them; and the DRF authentication that uses them.

A token reads ``isk_<prefix>_<secret>``: ``isk_`` makes a leaked token easy to recognise (secret
scanners, logs), the 8-character prefix finds its row, and only the SHA-256 digest of the whole
token is stored, so a database dump reveals no usable token. The secret has 256 bits, so a
plain hash is enough (a slow password hash would only slow every request down).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication

from accounts.models import ApiToken, User

if TYPE_CHECKING:
    from rest_framework.request import Request

TOKEN_RE = re.compile(r"isk_([a-z0-9]{8})_([A-Za-z0-9_-]{43})", re.ASCII)
_PREFIX_ALPHABET = string.ascii_lowercase + string.digits
# Writing last_used_at on every request would turn each read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)
MAX_NAME_LENGTH = 100
MAX_EXPIRY_DAYS = 3650
SCHEMES = ("bearer", "token")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def token_create(*, user: User, name: str, expires_in_days: int | None = None) -> tuple[ApiToken, str]:
    """Make a token for ``user``; returns the row and the token text, which is never shown again."""
    name = name.strip()
    if not name:
        raise ValidationError({"name": [_("Give the token a name, e.g. the laptop or CI job that uses it.")]})
    if len(name) > MAX_NAME_LENGTH or any(not ch.isprintable() for ch in name):
        raise ValidationError(
            {"name": [_("A token name is at most %(n)d printable characters.") % {"n": MAX_NAME_LENGTH}]}
        )
    expires_at = None
    if expires_in_days is not None:
        if not 1 <= expires_in_days <= MAX_EXPIRY_DAYS:
            raise ValidationError(
                {"expires_in_days": [_("A token expires after 1 to %(n)d days.") % {"n": MAX_EXPIRY_DAYS}]}
            )
        expires_at = timezone.now() + timedelta(days=expires_in_days)
    if ApiToken.objects.filter(user=user, name=name, revoked_at__isnull=True).exists():
        raise ValidationError({"name": [_("You already have a token with this name.")]})
    for _attempt in range(5):
        prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _i in range(8))
        token = f"isk_{prefix}_{secrets.token_urlsafe(32)}"
        try:
            with transaction.atomic():
                row = ApiToken.objects.create(
                    user=user, name=name, prefix=prefix, digest=_digest(token), expires_at=expires_at
                )
        except IntegrityError:
            if ApiToken.objects.filter(user=user, name=name, revoked_at__isnull=True).exists():
                raise ValidationError({"name": [_("You already have a token with this name.")]}) from None
            continue  # a prefix collision: draw again
        return row, token
    raise RuntimeError("could not draw an unused token prefix")


def token_revoke(*, token: ApiToken) -> bool:
    """Revoke ``token``; False if it already was."""
    now = timezone.now()
    revoked = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=now)
    if revoked:
        token.revoked_at = now
    return bool(revoked)


def token_check(text: str, *, now: datetime | None = None) -> ApiToken:
    """The active token ``text`` names, with its user; ``AuthenticationFailed`` saying why not."""
    match = TOKEN_RE.fullmatch(text)
    if match is None:
        raise exceptions.AuthenticationFailed(
            _("Malformed API token: expected isk_ followed by 8 and 43 characters (copy it again).")
        )
    row = ApiToken.objects.select_related("user").filter(prefix=match[1]).first()
    # compare_digest even against a dummy, so an unknown prefix takes as long as a wrong secret.
    expected = row.digest if row is not None else "0" * 64
    if not hmac.compare_digest(expected, _digest(text)) or row is None:
        raise exceptions.AuthenticationFailed(_("Unknown API token."))
    now = now or timezone.now()
    state = row.state(now)
    if state == "revoked":
        raise exceptions.AuthenticationFailed(_("This API token was revoked."))
    if state == "expired":
        raise exceptions.AuthenticationFailed(_("This API token has expired."))
    if not row.user.is_active:
        raise exceptions.AuthenticationFailed(_("The account of this API token is disabled."))
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=row.pk).update(last_used_at=now)
        row.last_used_at = now
    return row


class ApiTokenAuthentication(BaseAuthentication):
    """``Authorization: Bearer <token>`` (or DRF's ``Token <token>``). Other schemes are not ours."""

    def authenticate(self, request: Request) -> tuple[User, ApiToken] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        scheme, _sep, credentials = header.strip().partition(" ")
        if scheme.lower() not in SCHEMES:
            return None
        credentials = credentials.strip()
        if not credentials:
            raise exceptions.AuthenticationFailed(
                _("No token after %(scheme)s in the Authorization header.") % {"scheme": scheme}
            )
        if " " in credentials:
            raise exceptions.AuthenticationFailed(_("The Authorization header must hold exactly one token."))
        row = token_check(credentials)
        return row.user, row

    def authenticate_header(self, request: Request) -> str:
        # Makes DRF answer 401 (not 403) to a request without credentials.
        return 'Bearer realm="api"'
