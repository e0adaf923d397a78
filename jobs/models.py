from __future__ import annotations

import uuid
from collections.abc import Collection

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import connection, models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from jobs import registries

DEFAULT_CREDENTIAL_SECRET = "DESTINATION_CREDENTIAL"
# A free ACR personal instance holds at most 300 repositories.
DEFAULT_REPOSITORY_QUOTA = 300


def validate_registry_host(value: str) -> None:
    error = registries.host_error(value)
    if error:
        raise ValidationError(error, code="invalid_host")


def validate_namespace_name(value: str) -> None:
    error = registries.namespace_error(value)
    if error:
        raise ValidationError(error, code="invalid_namespace")


def validate_secret_name(value: str) -> None:
    error = registries.secret_name_error(value)
    if error:
        raise ValidationError(error, code="invalid_secret_name")


class TargetNamespaceQuerySet(models.QuerySet["TargetNamespace"]):
    def pushable_by(self, user: settings.AUTH_USER_MODEL) -> TargetNamespaceQuerySet:
        """Active namespaces the user may push to, directly or through a group."""
        if not user.is_authenticated or not user.is_active:
            return self.none()
        members = Q(members=user) | Q(member_groups__in=user.groups.all())
        return self.filter(members, is_active=True).distinct()


class TargetNamespace(models.Model):
    """A namespace in a destination registry (usually Aliyun ACR) that a team pushes to."""

    registry = models.CharField(
        _("registry host"),
        max_length=255,
        validators=[validate_registry_host],
        help_text=_("Host and optional port, e.g. registry.cn-hangzhou.aliyuncs.com."),
    )
    namespace = models.CharField(_("namespace"), max_length=30, validators=[validate_namespace_name])
    description = models.TextField(_("description"), blank=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="namespaces", verbose_name=_("members")
    )
    member_groups = models.ManyToManyField(
        Group, blank=True, related_name="namespaces", verbose_name=_("member groups")
    )
    credential_secret = models.CharField(
        _("credential secret"),
        max_length=100,
        default=DEFAULT_CREDENTIAL_SECRET,
        validators=[validate_secret_name],
        help_text=_(
            "Name of the GitHub repository secret holding username:password for this registry. "
            "For Aliyun ACR the password is the fixed password set in the ACR console "
            "(Instance > Access Credentials), not your Aliyun account password."
        ),
    )
    repository_quota = models.PositiveIntegerField(
        _("repository quota"),
        default=DEFAULT_REPOSITORY_QUOTA,
        help_text=_("How many repositories the namespace may hold (ACR personal edition: 300)."),
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    objects = TargetNamespaceQuerySet.as_manager()

    class Meta:
        verbose_name = _("target namespace")
        verbose_name_plural = _("target namespaces")
        ordering = ["registry", "namespace"]
        constraints = [
            models.UniqueConstraint(
                fields=["registry", "namespace"],
                name="jobs_namespace_unique",
                violation_error_message=_("This namespace already exists in this registry."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.registry}/{self.namespace}"

    def clean_fields(self, exclude: Collection[str] | None = None) -> None:
        # Normalise before the validators run, so "Registry.CN-Hangzhou…" is accepted as typed.
        self.registry = registries.normalise_host(self.registry or "")
        self.namespace = (self.namespace or "").strip()
        # GitHub stores secret names upper case and compares them case-insensitively.
        self.credential_secret = (self.credential_secret or "").strip().upper()
        super().clean_fields(exclude=exclude)

    def repository_count(self) -> int:
        """Repositories this namespace holds or is about to hold through imagesync's jobs."""
        return repository_counts([self.pk]).get(self.pk, 0)

    @property
    def registry_info(self) -> registries.RegistryInfo:
        return registries.RegistryInfo(self.registry)

    @property
    def registry_label(self) -> str:
        return self.registry_info.label


# Statuses whose jobs hold no repository: the quota ignores them, and so does its index.
NOT_HOLDING = ("failed", "cancelled", "error")


def repository_counts(namespace_ids: Collection[int]) -> dict[int, int]:
    """For each namespace, the distinct repositories of its succeeded or active jobs (one query).

    A loose index scan over ``jobs_ns_repository``: each step asks the index for the next
    repository name after the last one, so the cost grows with the number of distinct
    repositories (bounded by the quota, ~300), not with the namespace's job history. A plain
    ``COUNT(DISTINCT ...)`` read every job of the namespace (~100 ms for 20,000 jobs, see
    docs/benchmarks-api.md). Written in SQL that PostgreSQL and SQLite both run; the status
    list is spelled out so that PostgreSQL matches the partial index's condition.
    """
    ids = sorted({int(pk) for pk in namespace_ids})
    if not ids:
        return {}
    table = SyncJob._meta.db_table
    holding = "status NOT IN (" + ", ".join(f"'{status}'" for status in NOT_HOLDING) + ")"
    next_name = (
        f"SELECT MIN(destination_repository) FROM {table} "
        f"WHERE namespace_id = walk.ns AND {holding} AND destination_repository > walk.name"
    )
    first_name = f"SELECT MIN(destination_repository) FROM {table} WHERE namespace_id = ids.ns AND {holding}"
    values = ", ".join(["(%s)"] * len(ids))
    sql = (
        f"WITH RECURSIVE ids(ns) AS (VALUES {values}), "
        f"walk(ns, name) AS (SELECT ids.ns, ({first_name}) FROM ids "
        f"UNION ALL SELECT walk.ns, ({next_name}) FROM walk WHERE walk.name IS NOT NULL) "
        "SELECT ns, COUNT(name) FROM walk GROUP BY ns"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, ids)
        return {int(ns): n for ns, n in cursor.fetchall()}


class SyncJob(models.Model):
    """One request to copy a tag, or sync every tag of a repository, into a namespace."""

    class Kind(models.TextChoices):
        COPY = "copy", _("Copy one tag")
        SYNC = "sync", _("Sync all tags")

    class Status(models.TextChoices):
        """Where a job is in its life. Allowed moves are listed in ``TRANSITIONS``.

        pending → dispatching → queued → running → succeeded | failed | cancelled.
        ``error``: the job could never be dispatched (bad token, missing workflow, refused inputs).
        A dispatch whose answer was lost goes back to ``pending`` once it is known that no run
        exists; a run found to be already past a state skips it (queued → succeeded).
        """

        PENDING = "pending", _("Pending")
        DISPATCHING = "dispatching", _("Dispatching")
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")
        ERROR = "error", _("Error")

    S = Status
    TRANSITIONS: dict[str, frozenset[str]] = {
        S.PENDING: frozenset({S.DISPATCHING, S.CANCELLED, S.ERROR}),
        S.DISPATCHING: frozenset(
            {S.PENDING, S.QUEUED, S.RUNNING, S.SUCCEEDED, S.FAILED, S.CANCELLED, S.ERROR}
        ),
        S.QUEUED: frozenset({S.RUNNING, S.SUCCEEDED, S.FAILED, S.CANCELLED}),
        S.RUNNING: frozenset({S.SUCCEEDED, S.FAILED, S.CANCELLED}),
        S.SUCCEEDED: frozenset(),
        S.FAILED: frozenset(),
        S.CANCELLED: frozenset(),
        S.ERROR: frozenset(),
    }
    ACTIVE_STATUSES = frozenset({S.PENDING, S.DISPATCHING, S.QUEUED, S.RUNNING})
    FINISHED_STATUSES = frozenset({S.SUCCEEDED, S.FAILED, S.CANCELLED, S.ERROR})
    del S

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="jobs",
        verbose_name=_("owner"),
    )
    namespace = models.ForeignKey(
        TargetNamespace, on_delete=models.PROTECT, related_name="jobs", verbose_name=_("namespace")
    )
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices, default=Kind.COPY)
    source = models.CharField(_("source image"), max_length=512, help_text=_("Normalised reference."))
    destination = models.CharField(
        _("destination"),
        max_length=512,
        help_text=_("Full destination reference (copy) or repository (sync)."),
    )
    # The destination without its tag: what counts against the namespace's repository quota.
    destination_repository = models.CharField(_("destination repository"), max_length=512, blank=True)
    request_id = models.UUIDField(_("request id"), default=uuid.uuid4, unique=True, editable=False)
    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.PENDING, db_index=False
    )

    tag_include = models.CharField(
        _("include tags"), max_length=200, blank=True, help_text=_("Sync only tags matching this regular expression.")
    )
    tag_exclude = models.CharField(
        _("exclude tags"), max_length=200, blank=True, help_text=_("Skip tags matching this regular expression.")
    )

    # The job row is its own outbox: a pending job is dispatched once ``dispatch_after`` has
    # passed, by the task enqueued on commit or, if that message was lost, by the sweeper.
    dispatch_after = models.DateTimeField(_("dispatch after"), null=True, blank=True)
    dispatch_attempts = models.PositiveSmallIntegerField(_("dispatch attempts"), default=0)
    dispatch_started_at = models.DateTimeField(_("dispatch started"), null=True, blank=True)
    cancel_requested_at = models.DateTimeField(_("cancel requested"), null=True, blank=True)

    github_run_id = models.BigIntegerField(_("GitHub run id"), null=True, blank=True)
    github_run_number = models.PositiveIntegerField(_("run number"), null=True, blank=True)
    github_run_attempt = models.PositiveIntegerField(_("run attempt"), null=True, blank=True)
    github_run_url = models.URLField(_("run URL"), max_length=500, blank=True)
    conclusion = models.CharField(_("conclusion"), max_length=20, blank=True)
    error_message = models.TextField(_("error message"), blank=True)
    failed_step = models.CharField(_("failed step"), max_length=200, blank=True)
    log_excerpt = models.TextField(_("log excerpt"), blank=True)
    result = models.JSONField(
        _("result"), default=dict, blank=True, help_text=_("The IMAGESYNC-RESULT line of the run: per-tag outcomes.")
    )
    report_collected = models.BooleanField(_("report collected"), default=False)

    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    dispatched_at = models.DateTimeField(_("dispatched"), null=True, blank=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("sync job")
        verbose_name_plural = _("sync jobs")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["owner", "-created_at"], name="jobs_owner_newest"),
            models.Index(
                fields=["status", "updated_at"],
                name="jobs_active",
                condition=Q(status__in=["pending", "dispatching", "queued", "running"]),
            ),
            models.Index(fields=["-created_at"], name="jobs_newest"),
            # Everyone's jobs in one status (staff's "what failed lately"): the page and its count.
            models.Index(fields=["status", "-created_at"], name="jobs_status_newest"),
            # The quota counts distinct repositories of jobs that hold one: an index of just
            # those rows lets the count read the index alone.
            models.Index(
                fields=["namespace", "destination_repository"],
                name="jobs_ns_repository",
                condition=~Q(status__in=list(NOT_HOLDING)),
            ),
        ]
        constraints = [
            # One active job per identical request of one owner: a double submit (two tabs, a
            # retried API call) returns the job already running instead of copying twice.
            models.UniqueConstraint(
                fields=["owner", "namespace", "kind", "source", "destination", "tag_include", "tag_exclude"],
                condition=Q(status__in=["pending", "dispatching", "queued", "running"]),
                name="jobs_one_active_identical",
            ),
            models.UniqueConstraint(
                fields=["github_run_id"],
                condition=Q(github_run_id__isnull=False),
                name="jobs_one_job_per_run",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.kind} {self.source} → {self.destination}"

    @property
    def workflow(self) -> str:
        return "copy.yml" if self.kind == self.Kind.COPY else "sync.yml"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED_STATUSES

    @classmethod
    def can_move(cls, from_status: str, to_status: str) -> bool:
        return to_status in cls.TRANSITIONS.get(from_status, frozenset())


class JobTransition(models.Model):
    """One recorded move of a job from one status to another: who or what, when and why."""

    job = models.ForeignKey(SyncJob, on_delete=models.CASCADE, related_name="transitions")
    from_status = models.CharField(_("from"), max_length=12, choices=SyncJob.Status.choices)
    to_status = models.CharField(_("to"), max_length=12, choices=SyncJob.Status.choices)
    at = models.DateTimeField(_("at"), auto_now_add=True)
    actor = models.CharField(
        _("actor"), max_length=100, help_text=_("A user's email, or the part of the system: worker, webhook, poller…")
    )
    reason = models.TextField(_("reason"), blank=True)

    class Meta:
        verbose_name = _("transition")
        verbose_name_plural = _("transitions")
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.from_status} → {self.to_status}"


class WebhookDelivery(models.Model):
    """A webhook delivery already accepted: GitHub keeps the GUID when it redelivers."""

    guid = models.CharField(max_length=64, unique=True)
    event = models.CharField(max_length=50)
    action = models.CharField(max_length=50, blank=True)
    run_id = models.BigIntegerField(null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")

    def __str__(self) -> str:
        return f"{self.event}/{self.action} {self.guid}"
