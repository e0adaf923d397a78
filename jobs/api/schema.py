"""OpenAPI details drf-spectacular cannot infer: the token scheme and every error answer."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.tokens.ApiTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "isk_<prefix>_<secret>",
            "description": "An API token from the portal's API tokens page or `manage.py create_token`. "
            "`Authorization: Token <token>` is accepted too.",
        }


Detail = inline_serializer("Detail", {"detail": serializers.CharField()})
FieldErrors = OpenApiResponse(
    response={"type": "object", "additionalProperties": True},
    description='Invalid input, keyed by field: `{"source": ["tag is empty after \':\' …"]}`; '
    'a batch is keyed by item index: `{"jobs": {"2": {"source": ["…"]}}}`.',
)
_THROTTLED = OpenApiResponse(
    response=Detail,
    description="Too many requests: wait the number of seconds in Retry-After.",
)

COMMON: dict[int, Any] = {
    401: OpenApiResponse(Detail, description="No token, or a token that is unknown, revoked or expired."),
    403: OpenApiResponse(
        Detail, description="Not allowed (for example a non-staff user asking for all jobs)."
    ),
    429: _THROTTLED,
}
NOT_FOUND = {404: OpenApiResponse(Detail, description="No such object, or not yours.")}
BAD_INPUT = {400: FieldErrors}
CONFLICT = {
    409: OpenApiResponse(Detail, description="The job's state does not allow this (e.g. already finished).")
}


def responses(ok: dict[int, Any], *extra: dict[int, Any]) -> dict[int, Any]:
    merged = dict(ok)
    merged.update(COMMON)
    for more in extra:
        merged.update(more)
    return merged
