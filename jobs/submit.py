"""Submitting jobs as people name them: one, or many all-or-nothing, from the portal or the API.

A request names its namespace by id, ``registry/namespace`` or a bare name, or not at all when
the destination says it (``team/nginx:1``, ``registry.example.com/team/nginx:1``) or the user
has a default or a single namespace; the portal hands over the namespace itself.

Before a job is created its name is checked for a clash: ``bitnami/redis`` and ``library/redis``
both land on ``<namespace>/redis`` by default, and the second copy would overwrite tags of the
first. A clash is answered with ``RENAME`` (to the suggested free name), ``KEEP`` (mix them
knowingly) or left unanswered, which reports it and submits nothing. Everything else is
``jobs.services.job_create``.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from jobs import selectors
from jobs.models import SyncJob, TargetNamespace
from jobs.services import destination_clash, job_create

# The answers to a name clash.
RENAME = "suggested"  # copy to the suggested free name instead (the portal's button value)
KEEP = "keep"  # keep the name: the user knowingly mixes two images in one repository


@dataclass(frozen=True)
class Clash:
    key: Hashable  # the line (portal) or index (API) of the item; 0 for a single submission
    source: str
    suggestion: str | None  # None: a sync, whose destination cannot be renamed


@dataclass(frozen=True)
class ItemError:
    key: Hashable
    field: str
    message: str


@dataclass
class Outcome:
    jobs: list[tuple[Hashable, SyncJob, bool]] = field(default_factory=list)  # (key, job, created)
    errors: list[ItemError] = field(default_factory=list)
    clashes: list[Clash] = field(default_factory=list)

    @property
    def submitted(self) -> bool:
        return bool(self.jobs) and not self.errors and not self.clashes


@dataclass(frozen=True)
class Item:
    """One job as asked for. ``namespace``: the namespace itself, or how the user named it."""

    key: Hashable
    source: str
    kind: str = SyncJob.Kind.COPY
    namespace: TargetNamespace | int | str | None = None
    destination: str = ""
    tag_include: str = ""
    tag_exclude: str = ""
    on_clash: str = ""  # RENAME, KEEP, or "" to report a clash


def namespace_for(user: Any, *, namespace: int | str | None = None, destination: str = "") -> TargetNamespace:
    if namespace is not None:
        return selectors.namespace_resolve(user, namespace)
    if destination:
        return selectors.namespace_for_destination(user, destination)
    return selectors.namespace_default(user)


def job_clash(namespace: TargetNamespace, kind: str, source: str, destination: str, key: Hashable = 0) -> Clash | None:
    """The name clash a submission would cause, if any."""
    if kind == SyncJob.Kind.SYNC:
        # A sync lands where a default copy of the same repository would.
        suggestion = destination_clash(namespace, source, "")
        return Clash(key, source, None) if suggestion else None
    suggestion = destination_clash(namespace, source, destination)
    return Clash(key, source, suggestion) if suggestion else None


def submit_all(*, owner: Any, items: Iterable[Item], known_errors: Iterable[ItemError] = ()) -> Outcome:
    """Create one job per item, or none at all.

    Every item is tried, so that all mistakes are reported at once; any error or unanswered
    clash rolls the whole submission back (the dispatches queued for commit go with it).
    ``known_errors`` are mistakes the caller found in other items, which refuse it too. Items
    are created in order inside one transaction, so two items of the same submission that
    would clash with each other are caught too.
    """
    outcome = Outcome(errors=list(known_errors))
    with transaction.atomic():
        resolved: list[tuple[Item, TargetNamespace]] = []
        for item in items:
            try:
                resolved.append((item, _namespace_of(owner, item)))
            except ValidationError as exc:
                _report(outcome, item, exc)
        namespaces = {namespace.pk for _item, namespace in resolved}
        if len(namespaces) > 1:
            # A new repository locks its namespace until this transaction ends; two submissions
            # locking several namespaces in different orders would deadlock, so take them all
            # now, in one order. (One namespace is locked only if a new repository needs it.)
            list(TargetNamespace.objects.select_for_update().filter(pk__in=namespaces).order_by("pk").values("pk"))
        for item, namespace in resolved:
            try:
                _submit_one(owner, item, namespace, outcome)
            except ValidationError as exc:
                _report(outcome, item, exc)
        if not outcome.submitted:
            transaction.set_rollback(True)
    if not outcome.submitted:
        outcome.jobs = []
    return outcome


def _namespace_of(owner: Any, item: Item) -> TargetNamespace:
    if isinstance(item.namespace, TargetNamespace):
        return item.namespace
    return namespace_for(owner, namespace=item.namespace, destination=item.destination)


def _report(outcome: Outcome, item: Item, exc: ValidationError) -> None:
    errors = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
    for name, messages in errors.items():
        outcome.errors.extend(ItemError(item.key, name, message) for message in messages)


def _submit_one(owner: Any, item: Item, namespace: TargetNamespace, outcome: Outcome) -> None:
    destination = item.destination
    clash = job_clash(namespace, item.kind, item.source, destination, item.key)
    if clash is not None and item.on_clash != KEEP:
        if item.on_clash == RENAME and clash.suggestion:
            destination = clash.suggestion
        else:
            outcome.clashes.append(clash)
            return
    job, created = job_create(
        owner=owner,
        namespace=namespace,
        kind=item.kind,
        source=item.source,
        destination=destination,
        tag_include=item.tag_include,
        tag_exclude=item.tag_exclude,
    )
    outcome.jobs.append((item.key, job, created))
