"""Reading jobs and namespaces on behalf of a user. Every query starts from what the user may see."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q, QuerySet

from jobs.models import SyncJob, TargetNamespace, repository_counts


def jobs_visible_to(user: Any) -> QuerySet[SyncJob]:
    """The jobs ``user`` may open: their own; staff may open everyone's."""
    jobs = SyncJob.objects.select_related("namespace", "owner")
    return jobs if user.is_staff else jobs.filter(owner=user)


def jobs_filtered(
    jobs: QuerySet[SyncJob],
    user: Any,
    *,
    everyone: bool = False,
    owner_email: str | None = None,
    statuses: list[str] | None = None,
    kind: str | None = None,
    namespace: str | None = None,
    search: str | None = None,
    ids: list[int] | None = None,
) -> QuerySet[SyncJob]:
    """A job list: the user's own, or (staff only) everyone's or one owner's, narrowed down.

    ``statuses`` may hold the groups ``active`` and ``finished``; ``namespace`` is an id,
    ``registry/namespace`` or a namespace name.
    """
    if (everyone or owner_email) and not user.is_staff:
        raise PermissionDenied("only staff may list other people's jobs")
    if owner_email:
        jobs = jobs.filter(owner__email__iexact=owner_email)
    elif not everyone:
        jobs = jobs.filter(owner=user)
    if statuses:
        wanted = set(statuses)
        if "active" in wanted:
            wanted |= SyncJob.ACTIVE_STATUSES
        if "finished" in wanted:
            wanted |= SyncJob.FINISHED_STATUSES
        jobs = jobs.filter(status__in=wanted - {"active", "finished"})
    if kind:
        jobs = jobs.filter(kind=kind)
    if namespace:
        jobs = jobs.filter(_namespace_q(namespace.strip()))
    if search:
        jobs = jobs.filter(Q(source__icontains=search) | Q(destination__icontains=search))
    if ids:
        jobs = jobs.filter(pk__in=ids)
    return jobs


def _namespace_q(spec: str) -> Q:
    if spec.isascii() and spec.isdigit():
        return Q(namespace_id=int(spec)) if len(spec) < 19 else Q(pk__in=[])
    if "/" in spec:
        registry, _sep, name = spec.rstrip("/").rpartition("/")
        return Q(namespace__registry=registry.lower(), namespace__namespace=name)
    return Q(namespace__namespace=spec)


def namespaces_listed_for(user: Any) -> QuerySet[TargetNamespace]:
    """Namespaces the user may push to (staff: all), in name order."""
    namespaces = TargetNamespace.objects.all()
    if not user.is_staff:
        namespaces = namespaces.filter(pk__in=TargetNamespace.objects.pushable_by(user).values("pk"))
    return namespaces.order_by("registry", "namespace")


def with_repository_use(namespaces: Iterable[TargetNamespace]) -> list[TargetNamespace]:
    """The namespaces, each with ``repositories_used`` as the quota counts it (one query)."""
    namespaces = list(namespaces)
    used = repository_counts([ns.pk for ns in namespaces])
    for ns in namespaces:
        ns.repositories_used = used.get(ns.pk, 0)  # type: ignore[attr-defined]
    return namespaces


def namespace_resolve(user: Any, spec: str | int) -> TargetNamespace:
    """The namespace ``spec`` names among those ``user`` may push to.

    ``spec`` is an id, ``registry/namespace``, or a bare namespace name that matches exactly
    one of the user's namespaces. Raises ``ValidationError`` keyed ``namespace``.
    """
    mine = TargetNamespace.objects.pushable_by(user)
    text = str(spec).strip()
    if isinstance(spec, int) or (text.isascii() and text.isdigit()):
        found = mine.filter(pk=int(text)).first() if len(text) < 19 else None
        if found is None:
            raise _error(f"no namespace with id {text} that you may push to")
        return found
    if not text:
        raise _error("name the namespace: its id, registry/namespace or namespace name")
    if "/" in text:
        registry, _sep, name = text.rstrip("/").rpartition("/")
        found = mine.filter(registry=registry.lower(), namespace=name).first()
        if found is None:
            raise _error(f"no namespace {text} that you may push to{_yours(mine)}")
        return found
    matches = list(mine.filter(namespace=text)[:10])
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise _error(f"no namespace named {text} that you may push to{_yours(mine)}")
    hosts = ", ".join(str(ns) for ns in matches)
    raise _error(f"several of your namespaces are named {text} ({hosts}): give registry/namespace")


def namespace_for_destination(user: Any, destination: str) -> TargetNamespace:
    """The namespace a destination (``registry/ns/repo:tag`` or ``ns/repo:tag``) points into."""
    first, _sep, rest = destination.strip().partition("/")
    if "." in first or ":" in first or first == "localhost":
        spec = f"{first}/{rest.partition('/')[0]}"
    else:
        spec = first
    try:
        return namespace_resolve(user, spec)
    except ValidationError as exc:
        raise ValidationError({"destination": exc.message_dict["namespace"]}) from exc


def namespace_default(user: Any) -> TargetNamespace:
    """With no namespace or destination given: the user's default namespace (the portal's
    pre-selected one), else their only namespace."""
    default_id = getattr(user, "default_namespace_id", None)
    if default_id is not None:
        default = TargetNamespace.objects.pushable_by(user).filter(pk=default_id).first()
        if default is not None:
            return default
    mine = list(TargetNamespace.objects.pushable_by(user)[:2])
    if len(mine) == 1:
        return mine[0]
    if not mine:
        raise _error("you may not push to any namespace yet; ask an administrator to add you to one")
    yours = _yours(TargetNamespace.objects.pushable_by(user))
    raise _error(f"you may push to several namespaces{yours}: say which (or set a default namespace)")


def _yours(mine: QuerySet[TargetNamespace]) -> str:
    names = [str(ns) for ns in mine[:6]]
    if not names:
        return " (you may not push to any namespace yet)"
    more = ", …" if len(names) > 5 else ""
    return f" (yours: {', '.join(names[:5])}{more})"


def _error(message: str) -> ValidationError:
    return ValidationError({"namespace": [message]})
