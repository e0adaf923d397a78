"""Submitting jobs as API and CLI users name them, one at a time or all-or-nothing in a batch.

A request names its namespace by id, ``registry/namespace`` or a bare name, or not at all when
the destination says it (``team/nginx:1``, ``registry.example.com/team/nginx:1``) or the user
has a default or a single namespace. Everything else is ``jobs.services.job_create``.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from jobs import selectors, services
from jobs.models import SyncJob, TargetNamespace


def namespace_for(user: Any, *, namespace: int | str | None = None, destination: str = "") -> TargetNamespace:
    if namespace is not None:
        return selectors.namespace_resolve(user, namespace)
    if destination:
        return selectors.namespace_for_destination(user, destination)
    return selectors.namespace_default(user)


def job_submit(
    *,
    owner: Any,
    kind: str,
    source: str,
    namespace: int | str | None = None,
    destination: str = "",
    tag_include: str = "",
    tag_exclude: str = "",
) -> tuple[SyncJob, bool]:
    """``job_create`` with the namespace resolved; ``ValidationError`` keyed by field."""
    return services.job_create(
        owner=owner,
        namespace=namespace_for(owner, namespace=namespace, destination=destination),
        kind=kind,
        source=source,
        destination=destination,
        tag_include=tag_include,
        tag_exclude=tag_exclude,
    )


class BatchRefused(Exception):
    """Some items of a batch were refused; nothing was submitted. ``errors`` is keyed by index."""

    def __init__(self, errors: dict[str, Any]) -> None:
        super().__init__(f"{len(errors)} item(s) of the batch refused")
        self.errors = dict(sorted(errors.items(), key=lambda item: int(item[0])))


def jobs_submit_all(
    *, owner: Any, items: list[tuple[int, dict[str, Any]]], errors: dict[str, Any] | None = None
) -> list[tuple[SyncJob, bool]]:
    """Submit every ``(index, fields)`` item, or none.

    Every item is tried so that all mistakes are reported at once (``BatchRefused``, keyed by
    index, each like ``{"source": [...]}``). ``errors`` brings mistakes the caller already
    found in other items. Any error rolls the whole batch back, and the dispatches registered
    for commit go with it.
    """
    errors = dict(errors or {})
    submitted: list[tuple[SyncJob, bool]] = []
    with transaction.atomic():
        for index, fields in items:
            try:
                submitted.append(job_submit(owner=owner, **fields))
            except ValidationError as exc:
                errors[str(index)] = (
                    exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
                )
        if errors:
            transaction.set_rollback(True)
    if errors:
        raise BatchRefused(errors)
    return submitted
