"""What happens to jobs. Views, the API, commands and tasks call these; they hold no rules.

A job reaches GitHub exactly once: the move pending → dispatching is a conditional update, so
only one worker ever sends the dispatch, and a job found in ``dispatching`` (a lost answer, a
worker killed mid-request) is resolved by looking for its request id among the runs before
anything is sent again.
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from jobs import github
from jobs.models import NOT_HOLDING, JobTransition, SyncJob, TargetNamespace
from jobs.references import ImageRef, InvalidReference, parse_reference

log = logging.getLogger(__name__)
Status = SyncJob.Status



def dispatch_grace() -> timedelta:
    """Longer than one dispatch request can take (the client's connect + read timeout), so a
    dispatch older than this has certainly ended, answered or not."""
    return timedelta(seconds=settings.IMAGESYNC_DISPATCH_GRACE)


def run_list_lag() -> timedelta:
    """After the grace, how long runs are searched for before concluding none was created."""
    return timedelta(seconds=settings.IMAGESYNC_RUN_LIST_LAG)

MAX_DISPATCH_ATTEMPTS = 8
MAX_TAG_FILTER_LENGTH = 200

# The timestamp a job gets when it first enters a status.
_STAMPS = {
    Status.QUEUED: "dispatched_at",
    Status.RUNNING: "started_at",
    Status.SUCCEEDED: "finished_at",
    Status.FAILED: "finished_at",
    Status.CANCELLED: "finished_at",
    Status.ERROR: "finished_at",
}

_UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.ASCII)


class TransitionNotAllowed(ValueError):
    """The state machine has no such move (a bug in the caller, not a race)."""


class JobActionRefused(ValueError):
    """A user asked for something the job's state does not allow (cancel a finished job…)."""


class GitHubNotConfigured(RuntimeError):
    pass


# -- the state machine ----------------------------------------------------------------------


def job_transition(
    *,
    job: SyncJob,
    to: str,
    actor: str,
    reason: str = "",
    **fields: Any,
) -> bool:
    """Move ``job`` from the status it has in memory to ``to``, if nobody moved it first.

    The update is conditional on the status the caller saw, so two workers racing on the same
    job cannot both win: the loser gets False and changes nothing. On success the history row
    is written in the same transaction and ``job`` is updated in memory.
    """
    from_status = job.status
    if not SyncJob.can_move(from_status, to):
        raise TransitionNotAllowed(f"a job cannot go from {from_status} to {to}")
    now = timezone.now()
    changes: dict[str, Any] = {"status": to, "updated_at": now, **fields}
    stamp = _STAMPS.get(to)
    if stamp and getattr(job, stamp) is None and stamp not in fields:
        changes[stamp] = now
    if to == Status.RUNNING and job.dispatched_at is None and "dispatched_at" not in fields:
        changes["dispatched_at"] = now
    with transaction.atomic():
        moved = SyncJob.objects.filter(pk=job.pk, status=from_status).update(**changes)
        if not moved:
            return False
        JobTransition.objects.create(
            job=job, from_status=from_status, to_status=to, actor=actor[:100], reason=reason
        )
    for name, value in changes.items():
        setattr(job, name, value)
    return True


def _update_if_status(job: SyncJob, **fields: Any) -> bool:
    """Change fields of a job only while it still has the status we saw."""
    fields["updated_at"] = timezone.now()
    moved = SyncJob.objects.filter(pk=job.pk, status=job.status).update(**fields)
    if moved:
        for name, value in fields.items():
            setattr(job, name, value)
    return bool(moved)


# -- creating jobs --------------------------------------------------------------------------


def _field_error(field: str, message: str) -> ValidationError:
    return ValidationError({field: [message]})


def _parse(field: str, text: str) -> ImageRef:
    try:
        return parse_reference(text)
    except InvalidReference as exc:
        raise _field_error(field, str(exc)) from exc


def _check_tag_filter(field: str, pattern: str) -> str:
    if len(pattern) > MAX_TAG_FILTER_LENGTH:
        raise _field_error(field, f"a tag filter is at most {MAX_TAG_FILTER_LENGTH} characters")
    if any(not ch.isprintable() for ch in pattern):
        raise _field_error(field, "a tag filter cannot contain line breaks or control characters")
    try:
        re.compile(pattern)
    except re.error as exc:
        raise _field_error(field, f"not a valid regular expression: {exc}") from exc
    return pattern


def _destination_for(
    namespace: TargetNamespace, kind: str, source: ImageRef, destination: str
) -> str:
    """The full destination: given (full, or short ``namespace/name:tag``) or derived."""
    if kind == SyncJob.Kind.SYNC:
        # sync.yml always writes <registry>/<namespace>/<last component of the source>.
        derived = f"{namespace.registry}/{namespace.namespace}/{source.last_component}"
        if destination and destination.rstrip("/") not in (derived, f"{namespace.namespace}/{source.last_component}"):
            raise _field_error(
                "destination", f"a sync always goes to {derived}; leave the destination empty"
            )
        return derived
    if not destination:
        if source.tag is None:
            raise _field_error("destination", "a source pinned by digest needs a destination with a tag")
        return f"{namespace.registry}/{namespace.namespace}/{source.last_component}:{source.tag}"
    if not destination.startswith(f"{namespace.registry}/"):
        destination = f"{namespace.registry}/{destination}"
    ref = _parse("destination", destination)
    if ref.domain != namespace.registry:
        raise _field_error("destination", f"the destination must be in {namespace.registry}")
    if ref.digest is not None:
        raise _field_error("destination", "the destination takes a tag, not a digest")
    ns_prefix = f"{namespace.namespace}/"
    rest = ref.path[len(ns_prefix):] if ref.path.startswith(ns_prefix) else ""
    if not rest:
        raise _field_error("destination", f"the destination must be inside the namespace {namespace}")
    if "/" in rest and namespace.registry_info.is_aliyun:
        raise _field_error(
            "destination", "ACR repositories are one level deep: use namespace/name:tag"
        )
    if not _names_a_tag(destination) and source.tag:
        # No tag written for the destination: keep the source's, as exec.sh did.
        ref = ref.with_tag(source.tag)
    return str(ref)


def _check_quota(namespace: TargetNamespace, repository: str) -> None:
    """Refuse a job whose new repository would take the namespace past its quota.

    Call inside the transaction that saves the job. A new repository locks the namespace row
    until that transaction ends, so two jobs into two new repositories cannot both take the
    last free place; another tag of a repository already held needs no lock.
    """
    held = SyncJob.objects.filter(namespace=namespace, destination_repository=repository).exclude(
        status__in=NOT_HOLDING
    )
    if held.exists():
        return  # another tag of a repository the namespace already holds costs nothing
    TargetNamespace.objects.select_for_update().filter(pk=namespace.pk).values_list("pk").first()
    if held.exists():
        return  # a job that committed while this one waited for the lock brought it
    used = namespace.repository_count()
    if used >= namespace.repository_quota:
        raise _field_error(
            "namespace",
            f"{namespace} is full: {used} of {namespace.repository_quota} repositories are used; "
            "ask an administrator to raise the quota or remove repositories",
        )


def _names_a_tag(reference: str) -> bool:
    last = reference.rsplit("/", 1)[-1].split("@", 1)[0]
    return ":" in last


def job_create(
    *,
    owner: Any,
    namespace: TargetNamespace,
    kind: str,
    source: str,
    destination: str = "",
    tag_include: str = "",
    tag_exclude: str = "",
) -> tuple[SyncJob, bool]:
    """Validate and save a job, and dispatch it once the transaction commits.

    Returns ``(job, created)``: an identical job of the same owner that is still active is
    returned instead of starting a second copy of the same thing. Bad input raises a
    ``ValidationError`` keyed by field, and nothing is saved.
    """
    if kind not in SyncJob.Kind.values:
        raise _field_error("kind", f"kind must be one of {', '.join(SyncJob.Kind.values)}")
    if not TargetNamespace.objects.pushable_by(owner).filter(pk=namespace.pk).exists():
        raise _field_error("namespace", f"you may not push to {namespace}")
    given = _parse("source", source)
    if kind == SyncJob.Kind.SYNC:
        src = ImageRef(given.domain, given.path, "latest", None)  # a sync takes every tag
    elif given.tag and given.digest:
        # skopeo refuses name:tag@digest; the digest is what the user pinned, so copy that
        # and keep the tag only to name the destination.
        src = ImageRef(given.domain, given.path, None, given.digest)
    else:
        src = given
    dest = _destination_for(namespace, kind, given, destination)
    if kind == SyncJob.Kind.COPY and (tag_include or tag_exclude):
        raise _field_error("tag_include", "tag filters apply to a sync, not to a copy")
    tag_include = _check_tag_filter("tag_include", tag_include)
    tag_exclude = _check_tag_filter("tag_exclude", tag_exclude)
    source_text = src.name if kind == SyncJob.Kind.SYNC else str(src)

    identical = dict(
        owner=owner, namespace=namespace, kind=kind, source=source_text, destination=dest,
        tag_include=tag_include, tag_exclude=tag_exclude,
    )
    existing = _active_identical(identical)
    if existing is not None:
        return existing, False
    repository = dest if kind == SyncJob.Kind.SYNC else parse_reference(dest).name
    try:
        with transaction.atomic():
            _check_quota(namespace, repository)
            job = SyncJob.objects.create(destination_repository=repository, **identical)
            JobTransition.objects.create(
                job=job, from_status=Status.PENDING, to_status=Status.PENDING,
                actor=_actor(owner), reason="submitted",
            )
    except IntegrityError:
        # A concurrent identical submission won (the active-job constraint): return that one.
        existing = _active_identical(identical)
        if existing is None:
            raise
        return existing, False
    _enqueue_on_commit("dispatch_job", job.pk)
    return job, True


def _active_identical(identical: dict[str, Any]) -> SyncJob | None:
    """The owner's job under way that asked for exactly this, with its owner and namespace."""
    job = SyncJob.objects.filter(status__in=SyncJob.ACTIVE_STATUSES, **identical).first()
    if job is not None:
        job.owner, job.namespace = identical["owner"], identical["namespace"]
    return job


def _actor(user: Any) -> str:
    return getattr(user, "email", None) or str(user)


def _enqueue_on_commit(task_name: str, job_id: int, countdown: float | None = None) -> None:
    from jobs import tasks  # tasks import services: resolve at call time

    task = getattr(tasks, task_name)
    options = {"countdown": countdown} if countdown else {}
    transaction.on_commit(lambda: task.apply_async((job_id,), **options))


# -- talking to GitHub ----------------------------------------------------------------------

_clients: dict[tuple[str, ...], github.GitHubClient] = {}


def github_client() -> github.GitHubClient:
    """One client per process and configuration, so its HTTP connections are reused."""
    if not settings.GITHUB_TOKEN or not settings.GITHUB_REPOSITORY:
        raise GitHubNotConfigured(
            "GitHub is not configured: set GITHUB_TOKEN and GITHUB_REPOSITORY for the portal"
        )
    key = (settings.GITHUB_API_URL, settings.GITHUB_TOKEN, settings.GITHUB_REPOSITORY, settings.GITHUB_API_VERSION)
    client = _clients.get(key)
    if client is None:
        client = github.GitHubClient(
            github.Config(
                token=settings.GITHUB_TOKEN,
                repository=settings.GITHUB_REPOSITORY,
                api_url=settings.GITHUB_API_URL,
                api_version=settings.GITHUB_API_VERSION,
                user_agent="imagesync/1.0",
            )
        )
        _clients[key] = client
    return client


def workflow_inputs(job: SyncJob) -> dict[str, str]:
    """The dispatch inputs of copy.yml / sync.yml for a job (all strings, as GitHub wants)."""
    namespace = job.namespace
    src = parse_reference(job.source if job.kind == SyncJob.Kind.COPY else f"{job.source}:latest")
    inputs = {
        "source": src.domain,
        "destination": namespace.registry,
        "request_id": str(job.request_id),
        "credential": namespace.credential_secret,
    }
    if job.kind == SyncJob.Kind.COPY:
        dst = parse_reference(job.destination)
        pin = f"@{src.digest}" if src.digest else f":{src.tag}"
        inputs["source_repo"] = f"{src.path}{pin}"
        inputs["destination_repo"] = f"{dst.path}:{dst.tag}"
    else:
        inputs["source_repo"] = src.path
        inputs["destination_scope"] = namespace.namespace
        inputs["include_tags"] = job.tag_include
        inputs["exclude_tags"] = job.tag_exclude
    return inputs


def _backoff(attempt: int) -> timedelta:
    return timedelta(seconds=min(600, 5 * 2 ** max(0, attempt - 1)))


def job_dispatch(*, job_id: int) -> str:
    """Send a pending job to GitHub. Safe to call any number of times for the same job."""
    job = SyncJob.objects.select_related("namespace").filter(pk=job_id).first()
    if job is None:
        return "gone"
    if job.status == Status.DISPATCHING:
        return job_resolve_dispatch(job_id=job_id)
    if job.status != Status.PENDING:
        return f"already {job.status}"
    now = timezone.now()
    if job.cancel_requested_at is not None:
        job_transition(job=job, to=Status.CANCELLED, actor="worker", reason="cancelled before dispatch")
        return "cancelled"
    if job.dispatch_after and job.dispatch_after > now:
        return "deferred"
    if not _take_dispatch_slot():
        # Another dispatch went out less than a second ago, from any worker: come back later
        # instead of sleeping in this worker, which has webhooks and polls to process too.
        # Jobs come back in the order they were submitted, about one slot each: a job with n
        # older jobs waiting tries again in about n slots, not at a random time.
        ahead = SyncJob.objects.filter(status=Status.PENDING, created_at__lt=job.created_at).count()
        spacing = settings.IMAGESYNC_DISPATCH_SPACING
        _enqueue_on_commit(
            "dispatch_job", job.pk, countdown=spacing * (1 + min(ahead, 600)) + random.uniform(0, 0.2)
        )
        return "paced"
    if not job_transition(
        job=job,
        to=Status.DISPATCHING,
        actor="worker",
        reason=f"dispatching {job.workflow} (attempt {job.dispatch_attempts + 1})",
        dispatch_started_at=now,
        dispatch_attempts=job.dispatch_attempts + 1,
    ):
        return "lost race"
    try:
        client = github_client()
        result = client.dispatch_workflow(job.workflow, settings.GITHUB_REF, workflow_inputs(job))
    except GitHubNotConfigured as exc:
        job_transition(job=job, to=Status.ERROR, actor="worker", reason="not configured", error_message=str(exc))
        return "error"
    except github.GitHubError as exc:
        return _dispatch_failed(job, exc)
    if result.run_id is not None:
        _record_run(job, run_id=result.run_id, html_url=result.html_url or "", actor="worker", reason="dispatched")
        return "queued"
    # The server answered 204 (older GHES): GitHub accepted the dispatch, the run is found by
    # the request id carried in its run-name, here or by the poller.
    run = _find_run(client, job)
    if run is not None:
        job_apply_run(job=job, run=run, actor="worker")
    else:
        job_transition(job=job, to=Status.QUEUED, actor="worker", reason="dispatch accepted; run not listed yet")
    return "queued"


DISPATCH_SLOT_KEY = "imagesync:github:dispatch-slot"


def _take_dispatch_slot() -> bool:
    """At most one dispatch per IMAGESYNC_DISPATCH_SPACING seconds from the whole portal.

    GitHub asks for mutating requests one at a time about a second apart (secondary rate
    limits: about 80 content-creating requests a minute). With Redis the slot is shared by all
    workers (an atomic SET NX with expiry); the embedded cache is per process.
    """
    spacing = settings.IMAGESYNC_DISPATCH_SPACING
    return spacing <= 0 or cache.add(DISPATCH_SLOT_KEY, 1, timeout=spacing)


def _record_run(job: SyncJob, *, run_id: int, html_url: str, actor: str, reason: str) -> None:
    try:
        moved = job_transition(
            job=job, to=Status.QUEUED, actor=actor, reason=reason, github_run_id=run_id, github_run_url=html_url
        )
    except IntegrityError:
        # Another job already owns this run id: impossible unless GitHub reused an id.
        log.error("run %s is already tracked by another job; job %s not updated", run_id, job.pk)
        return
    if moved and job.cancel_requested_at is not None:
        _enqueue_on_commit("cancel_run", job.pk)


def _dispatch_failed(job: SyncJob, exc: github.GitHubError) -> str:
    if exc.outcome_unknown:
        # A run may exist: never send again before looking for it (after the grace period,
        # when any request still in flight has certainly ended).
        log.warning("dispatch of job %s: outcome unknown (%s); will look for its run", job.pk, exc.message)
        _enqueue_on_commit("resolve_dispatch", job.pk, countdown=dispatch_grace().total_seconds())
        return "unknown"
    if exc.retryable and job.dispatch_attempts < MAX_DISPATCH_ATTEMPTS:
        wait = max(_backoff(job.dispatch_attempts), timedelta(seconds=exc.retry_after or 0))
        job_transition(
            job=job,
            to=Status.PENDING,
            actor="worker",
            reason=f"GitHub did not accept the dispatch ({exc.message}); retrying in {int(wait.total_seconds())} s",
            dispatch_after=timezone.now() + wait,
        )
        _enqueue_on_commit("dispatch_job", job.pk, countdown=wait.total_seconds())
        return "retry"
    message = exc.message if not exc.retryable else f"GitHub kept refusing the dispatch: {exc.message}"
    job_transition(job=job, to=Status.ERROR, actor="worker", reason="dispatch refused", error_message=message)
    return "error"


def _find_run(client: github.GitHubClient, job: SyncJob) -> github.Run | None:
    since = job.dispatch_started_at or job.created_at
    return client.find_run_by_request_id(job.workflow, str(job.request_id), since)


def job_resolve_dispatch(*, job_id: int) -> str:
    """Decide the fate of a job left in ``dispatching``: find its run, or dispatch again."""
    job = SyncJob.objects.select_related("namespace").filter(pk=job_id).first()
    if job is None or job.status != Status.DISPATCHING:
        return "nothing to resolve"
    now = timezone.now()
    started = job.dispatch_started_at or job.updated_at
    if now - started < dispatch_grace():
        # Another worker may still be waiting for GitHub's answer: come back when it cannot be.
        _enqueue_on_commit("resolve_dispatch", job.pk, countdown=(started + dispatch_grace() - now).total_seconds() + 1)
        return "too early"
    try:
        client = github_client()
        run = _find_run(client, job)
    except GitHubNotConfigured as exc:
        job_transition(job=job, to=Status.ERROR, actor="worker", reason="not configured", error_message=str(exc))
        return "error"
    except github.GitHubError as exc:
        log.warning("looking for the run of job %s failed: %s", job.pk, exc.message)
        _enqueue_on_commit("resolve_dispatch", job.pk, countdown=max(30, exc.retry_after or 0))
        return "retry lookup"
    if run is not None:
        job_apply_run(job=job, run=run, actor="worker")
        return "found"
    if now - started < dispatch_grace() + run_list_lag():
        _enqueue_on_commit("resolve_dispatch", job.pk, countdown=20)
        return "look again"
    job_transition(
        job=job, to=Status.PENDING, actor="worker",
        reason="the dispatch's answer was lost and no run carries this job's request id: dispatching again",
        dispatch_after=now,
    )
    _enqueue_on_commit("dispatch_job", job.pk)
    return "redispatch"


# -- following runs -------------------------------------------------------------------------


def status_for_run(run: github.Run) -> str:
    if run.status != "completed":
        return Status.RUNNING if run.status == "in_progress" else Status.QUEUED
    if run.conclusion == "success":
        return Status.SUCCEEDED
    if run.conclusion == "cancelled":
        return Status.CANCELLED
    return Status.FAILED


_CONCLUSION_MESSAGES = {
    "failure": "the workflow run failed",
    "timed_out": "the workflow run hit its time limit",
    "startup_failure": "the workflow could not start (check the workflow file on the dispatched branch)",
    "action_required": "the workflow run is waiting for approval on GitHub",
    "stale": "GitHub marked the workflow run stale",
    "skipped": "the workflow run was skipped",
    "neutral": "the workflow run ended neither in success nor failure",
}


def job_apply_run(*, job: SyncJob, run: github.Run, actor: str) -> bool:
    """Bring a job in line with what GitHub says of its run. Stale or repeated news is ignored."""
    if job.is_finished:
        return False
    if job.github_run_id is not None and job.github_run_id != run.id:
        log.warning("job %s tracks run %s, not %s: ignored", job.pk, job.github_run_id, run.id)
        return False
    target = status_for_run(run)
    fields: dict[str, Any] = {
        "github_run_id": run.id,
        "github_run_number": run.run_number,
        "github_run_attempt": run.run_attempt,
        "github_run_url": run.html_url or job.github_run_url,
        "conclusion": run.conclusion or "",
    }
    if target == Status.RUNNING and run.run_started_at:
        fields["started_at"] = run.run_started_at
    if target == Status.FAILED:
        fields["error_message"] = _CONCLUSION_MESSAGES.get(run.conclusion or "", f"the run ended {run.conclusion}")
    if target == Status.CANCELLED and not job.error_message:
        fields["error_message"] = (
            "cancelled at your request" if job.cancel_requested_at else "the run was cancelled on GitHub"
        )
    if job.status == target:
        changed = {k: v for k, v in fields.items() if getattr(job, k) != v}
        return bool(changed) and _update_if_status(job, **changed)
    if not SyncJob.can_move(job.status, target):
        return False  # e.g. an "in_progress" event arriving after "completed"
    try:
        moved = job_transition(job=job, to=target, actor=actor, reason=f"run {run.status}" + (f"/{run.conclusion}" if run.conclusion else ""), **fields)
    except IntegrityError:
        log.error("run %s is already tracked by another job; job %s not updated", run.id, job.pk)
        return False
    if not moved:
        return False
    if job.is_finished and (job.kind == SyncJob.Kind.SYNC or target != Status.SUCCEEDED):
        _enqueue_on_commit("collect_run_report", job.pk)
    elif job.cancel_requested_at is not None and job.is_active:
        _enqueue_on_commit("cancel_run", job.pk)
    return True


def find_job_for_run(run: github.Run) -> SyncJob | None:
    job = SyncJob.objects.select_related("namespace").filter(github_run_id=run.id).first()
    if job is not None:
        return job
    ids = _UUID_RE.findall(run.display_title or "")
    if not ids:
        return None
    return (
        SyncJob.objects.select_related("namespace")
        .filter(request_id__in=[uuid.UUID(i) for i in ids], github_run_id__isnull=True)
        .first()
    )


def job_apply_webhook_run(*, run_data: dict[str, Any]) -> str:
    run = github.Run.from_api(run_data)
    job = find_job_for_run(run)
    if job is None:
        return "no job"
    return "applied" if job_apply_run(job=job, run=run, actor="webhook") else "unchanged"


def poll_workflow(
    *,
    workflow: str,
    jobs: list[SyncJob],
    etag_get: Callable[[str], str | None],
    etag_set: Callable[[str, str], None],
) -> int:
    """Update ``jobs`` (all active jobs of one workflow) from one list of its recent runs.

    One list call covers every job dispatched since the oldest of them, and an unchanged list
    answers 304 (free). A 304 only says the list is as it was, so it is trusted only while the
    jobs are as they were when that list was applied: the ETag is kept under a key that names
    them and their states. Returns how many jobs changed.
    """
    client = github_client()
    oldest = min((j.dispatch_started_at or j.created_at) for j in jobs) - timedelta(minutes=5)
    created = github.created_since(oldest)
    seen = ",".join(f"{j.pk}:{j.status}:{j.github_run_id}" for j in sorted(jobs, key=lambda j: j.pk))
    key = f"{workflow}:{created}:{hashlib.sha256(seen.encode()).hexdigest()[:32]}"
    by_run = {j.github_run_id: j for j in jobs if j.github_run_id}
    by_request = {str(j.request_id): j for j in jobs if not j.github_run_id}
    changed = 0
    first_etag = None
    for page in range(1, 11):
        listing = client.list_workflow_runs(
            workflow, event="workflow_dispatch", created=created, page=page,
            etag=etag_get(key) if page == 1 else None,
        )
        if listing.not_modified:
            return changed
        if page == 1 and not listing.has_next:
            # Only a one-page list may be trusted on a 304 later: the ETag covers page 1 alone,
            # and a run changing on page 2 would hide behind an unchanged page 1.
            first_etag = listing.etag
        for run in listing.runs:
            job = by_run.get(run.id)
            if job is None:
                job = next((by_request[i] for i in _UUID_RE.findall(run.display_title or "") if i in by_request), None)
            if job is not None and job_apply_run(job=job, run=run, actor="poller"):
                changed += 1
        if not listing.has_next:
            break
    if first_etag and not changed:
        # Stored only once the list was applied and left every job as it was: the next poll
        # with the same jobs in the same states may then trust a 304.
        etag_set(key, first_etag)
    return changed


# -- failure details ------------------------------------------------------------------------

RESULT_MARK = "IMAGESYNC-RESULT "
_TIMESTAMP_RE = re.compile(r"^\d{4}-\d\d-\d\dT[\d:.]+Z ")
EXCERPT_LINES = 40


def parse_run_log(text: str) -> tuple[dict[str, Any], list[str], list[str]]:
    """From a job log: the IMAGESYNC-RESULT object, the ::error:: messages, and the last lines."""
    import json

    result: dict[str, Any] = {}
    errors: list[str] = []
    lines = [_TIMESTAMP_RE.sub("", line) for line in text.splitlines()]
    for line in lines:
        if RESULT_MARK in line:
            try:
                value = json.loads(line.split(RESULT_MARK, 1)[1])
                if isinstance(value, dict):
                    result = value
            except ValueError:
                pass
        elif line.startswith("##[error]"):
            # How GitHub shows an ::error:: command in a job log (already unescaped).
            errors.append(line.removeprefix("##[error]"))
        elif line.startswith("::error"):
            errors.append(line.split("::", 2)[-1].replace("%0A", "\n").replace("%25", "%"))
    return result, errors, lines[-EXCERPT_LINES:]


def job_collect_report(*, job_id: int) -> str:
    """Record the failing step, the log excerpt and per-tag results of a finished run."""
    job = SyncJob.objects.filter(pk=job_id).first()
    if job is None or not job.is_finished or job.report_collected or not job.github_run_id:
        return "nothing to collect"
    client = github_client()
    run_jobs = client.list_run_jobs(job.github_run_id)
    failed_step = ""
    log_job = run_jobs[0] if run_jobs else None
    for gh_job in run_jobs:
        step = next((s for s in gh_job.steps if s.conclusion == "failure"), None)
        if step is not None:
            failed_step, log_job = f"{gh_job.name} › {step.name}", gh_job
            break
    result: dict[str, Any] = {}
    errors: list[str] = []
    excerpt: list[str] = []
    if log_job is not None:
        try:
            result, errors, excerpt = parse_run_log(client.job_log_text(log_job.id))
        except github.GitHubError as exc:
            if exc.retryable:
                raise
            excerpt = [f"(log not available: {exc.message})"]
    fields: dict[str, Any] = {
        "report_collected": True,
        "result": result,
        "failed_step": failed_step[:200],
        "log_excerpt": "\n".join(excerpt) if job.status != Status.SUCCEEDED else "",
    }
    if errors and job.status == Status.FAILED:
        fields["error_message"] = "\n".join(errors[:5])
    SyncJob.objects.filter(pk=job.pk).update(**fields)
    return "collected"


# -- user actions ---------------------------------------------------------------------------


def job_cancel(*, job: SyncJob, actor: str) -> None:
    """Cancel a job: at once if GitHub has not seen it, else by cancelling its run."""
    for _ in range(3):
        if job.is_finished:
            raise JobActionRefused(f"the job has already finished ({job.status})")
        if job.status == Status.PENDING:
            if job_transition(job=job, to=Status.CANCELLED, actor=actor, reason="cancelled before dispatch",
                              error_message="cancelled at your request"):
                return
        elif job.cancel_requested_at is not None or _update_if_status(job, cancel_requested_at=timezone.now()):
            JobTransition.objects.create(job=job, from_status=job.status, to_status=job.status, actor=actor, reason="cancel requested")
            if job.github_run_id:
                _enqueue_on_commit("cancel_run", job.pk)
            return
        job.refresh_from_db()
    raise JobActionRefused("the job kept changing; try again")


def job_cancel_run(*, job_id: int) -> str:
    job = SyncJob.objects.filter(pk=job_id).first()
    if job is None or not job.is_active or not job.github_run_id or job.cancel_requested_at is None:
        return "nothing to cancel"
    accepted = github_client().cancel_run(job.github_run_id)
    return "cancel accepted" if accepted else "run already finishing"


# A queued or running job without news for this long is checked run by run: its run may have
# been deleted, or lie outside what the poller lists.
STALE_RUN_AFTER = timedelta(minutes=30)


def job_check_run(*, job_id: int) -> str:
    """Look at one quiet queued/running job's run directly and settle what it finds."""
    job = SyncJob.objects.select_related("namespace").filter(pk=job_id).first()
    if job is None or job.status not in (Status.QUEUED, Status.RUNNING):
        return "nothing to check"
    client = github_client()
    if job.github_run_id is None:
        run = _find_run(client, job)
        if run is not None:
            job_apply_run(job=job, run=run, actor="sweeper")
            return "found"
        job_transition(
            job=job, to=Status.FAILED, actor="sweeper", reason="no run found",
            error_message="GitHub accepted the dispatch, but no run carrying this job's request id appeared "
            "(check the workflow's run-name and the Actions tab)",
        )
        return "no run"
    try:
        detail = client.get_run(job.github_run_id)
    except github.GitHubError as exc:
        if exc.kind != "not_found":
            raise
        job_transition(
            job=job, to=Status.FAILED, actor="sweeper", reason="run gone",
            error_message=f"the GitHub run {job.github_run_id} no longer exists (deleted on GitHub?)",
        )
        return "run gone"
    if detail.run is not None and not job_apply_run(job=job, run=detail.run, actor="sweeper"):
        _update_if_status(job)  # still running: quiet again for another while
    return "checked"


def stale_jobs(now: datetime) -> dict[str, list[int]]:
    """Jobs the sweeper must look at, by what to do with them (bounded batches)."""
    S = Status
    return {
        "check": list(
            SyncJob.objects.filter(status__in=[S.QUEUED, S.RUNNING], updated_at__lt=now - STALE_RUN_AFTER)
            .values_list("pk", flat=True)[:50]
        ),
        "dispatch": list(
            SyncJob.objects.filter(status=S.PENDING, created_at__lt=now - timedelta(seconds=30))
            .exclude(dispatch_after__gt=now)
            .values_list("pk", flat=True)[:50]
        ),
        "resolve": list(
            SyncJob.objects.filter(status=S.DISPATCHING, dispatch_started_at__lt=now - dispatch_grace())
            .values_list("pk", flat=True)[:50]
        ),
    }


def job_retry(*, job: SyncJob, actor: Any) -> tuple[SyncJob, bool]:
    """Start a finished, unsuccessful job again as a new job with the same request."""
    if job.status not in (Status.FAILED, Status.CANCELLED, Status.ERROR):
        raise JobActionRefused(f"only a failed, cancelled or errored job can be retried, not a {job.status} one")
    return job_create(
        owner=actor,
        namespace=job.namespace,
        kind=job.kind,
        source=job.source,
        destination=job.destination if job.kind == SyncJob.Kind.COPY else "",
        tag_include=job.tag_include,
        tag_exclude=job.tag_exclude,
    )


def job_delete(*, job: SyncJob) -> None:
    """Delete a finished job and its history. Active jobs are cancelled first, not deleted."""
    deleted, _ = SyncJob.objects.filter(pk=job.pk, status__in=SyncJob.FINISHED_STATUSES).delete()
    if not deleted:
        raise JobActionRefused("only a finished job can be deleted; cancel it first")


# -- name clashes ---------------------------------------------------------------------------

def destination_clash(namespace: TargetNamespace, source: str, destination: str) -> str | None:
    """A prefixed destination to offer when a copy would mix two images in one repository.

    ``bitnami/redis`` and ``library/redis`` both land on ``<namespace>/redis`` by default: the
    second copy would put tags of a different image beside the first one's. When the destination
    repository of ``source`` (copied to ``destination``, given as on the form or empty) is
    already held in the namespace by a job whose source repository differs, this returns a
    free alternative as ``<namespace>/<prefixed-name>:<tag>`` (``team/bitnami-redis:7``);
    otherwise None. Input that ``job_create`` would refuse is no clash: it reports that itself.
    """
    try:
        src = parse_reference(source)
        dest = parse_reference(_destination_for(namespace, SyncJob.Kind.COPY, src, destination))
    except (InvalidReference, ValidationError):
        return None
    if not _held_by_another_source(namespace, dest.name, src.name):
        return None
    prefix = f"{namespace.registry}/{namespace.namespace}/"
    path_parts = src.path.split("/")
    host_label = re.sub(r"[^a-z0-9]+", "-", src.domain.split(".")[0]).strip("-") or "registry"
    candidates = ["-".join(path_parts), "-".join([host_label, *path_parts])]
    candidates += [f"{candidates[1]}-{n}" for n in range(2, 10)]
    for name in candidates:
        name = name[-128:].strip("-._")
        if not _held_by_another_source(namespace, prefix + name, src.name):
            return f"{namespace.namespace}/{name}:{dest.tag}"
    return None


def _held_by_another_source(namespace: TargetNamespace, repository: str, source_name: str) -> bool:
    """Whether a succeeded or active job put another source repository into ``repository``.

    Sources are stored normalised: a copy's as ``name:tag`` or ``name@digest`` (or both), a
    sync's as the bare ``name``; so a job of the same source repository is one whose source
    is ``source_name`` or starts with it followed by ':' or '@'.
    """
    return (
        SyncJob.objects.filter(namespace=namespace, destination_repository=repository)
        .exclude(status__in=NOT_HOLDING)
        .exclude(source=source_name)
        .exclude(source__startswith=f"{source_name}:")
        .exclude(source__startswith=f"{source_name}@")
        .exists()
    )
