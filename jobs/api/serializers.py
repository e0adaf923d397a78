"""What the API reads (``*Input``) and what it answers (everything else). No rules live here."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from jobs.models import JobTransition, SyncJob, TargetNamespace

MAX_BATCH = 10
FINISHED_GROUP = "finished"
ACTIVE_GROUP = "active"


# -- input ----------------------------------------------------------------------------------


@extend_schema_field(
    {"oneOf": [{"type": "integer", "minimum": 1}, {"type": "string", "minLength": 1, "maxLength": 300}]}
)
class NamespaceSpecField(serializers.Field):
    """A namespace id, ``registry/namespace``, or a bare namespace name."""

    default_error_messages = {
        "invalid": "Give a namespace id, registry/namespace, or a namespace name.",
        "too_long": "A namespace reference is at most 300 characters.",
    }

    def to_internal_value(self, data: Any) -> int | str:
        if isinstance(data, bool) or not isinstance(data, int | str):
            self.fail("invalid")
        if isinstance(data, int):
            if data < 1:
                self.fail("invalid")
            return data
        text = data.strip()
        if not text or any(not ch.isprintable() for ch in text):
            self.fail("invalid")
        if len(text) > 300:
            self.fail("too_long")
        return text

    def to_representation(self, value: Any) -> Any:
        return value


_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
# The reference grammar (jobs.references) for the schema's readers and fuzzers; the service is
# what enforces it, with a message per mistake.
REFERENCE_PATTERN = (
    rf"^(?:{_LABEL}(?:\.{_LABEL})*(?::[0-9]+)?/)?{_COMPONENT}(?:/{_COMPONENT})*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
    r"(?:@(?:sha256:[a-f0-9]{64}|sha384:[a-f0-9]{96}|sha512:[a-f0-9]{128}))?$"
)


@extend_schema_field({"type": "string", "minLength": 1, "maxLength": 1024, "pattern": REFERENCE_PATTERN})
class ReferenceField(serializers.CharField):
    pass


def _raw_text(**kwargs: Any) -> serializers.CharField:
    # trim_whitespace=False: a reference with a stray newline or space is refused by the parser
    # with a message saying so, rather than silently repaired.
    return serializers.CharField(trim_whitespace=False, **kwargs)


class JobInput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=SyncJob.Kind.choices, default=SyncJob.Kind.COPY)
    source = ReferenceField(
        max_length=1024,
        trim_whitespace=False,
        help_text="Image to copy, e.g. nginx:1.27 or ghcr.io/owner/app:v1.",
    )
    namespace = NamespaceSpecField(
        required=False,
        help_text="Target namespace: its id, registry/namespace, or a namespace name that is unambiguous "
        "among yours. Optional: the destination's namespace, else your default one, else your only one.",
    )
    destination = _raw_text(
        max_length=1024,
        required=False,
        allow_blank=True,
        default="",
        help_text="Full (registry/ns/name:tag) or short (ns/name:tag) destination. Default: "
        "<namespace>/<last path component of the source>:<tag>. A sync takes none.",
    )
    tag_include = _raw_text(
        max_length=200,
        required=False,
        allow_blank=True,
        default="",
        help_text="Sync only: copy only tags matching this regular expression.",
    )
    tag_exclude = _raw_text(
        max_length=200,
        required=False,
        allow_blank=True,
        default="",
        help_text="Sync only: skip tags matching this regular expression.",
    )
    on_clash = serializers.ChoiceField(
        choices=["refuse", "rename", "keep"],
        default="refuse",
        help_text="When the image would land in a repository that holds another image's tags "
        "(bitnami/redis into a namespace that holds library/redis): refuse (400, nothing created), "
        "rename (copy to the suggested free name, e.g. team/bitnami-redis:7; copies only), "
        "or keep (mix them knowingly).",
    )


@extend_schema_field({"$ref": "#/components/schemas/JobInputRequest"})
class BatchItemField(serializers.JSONField):
    """Each item is checked by JobInput in the view, so that every bad item is reported at once."""


class JobBatchInput(serializers.Serializer):
    jobs = serializers.ListField(
        child=BatchItemField(),
        min_length=1,
        max_length=MAX_BATCH,
        help_text=f"1 to {MAX_BATCH} jobs, each as in a single create. All are created, or none.",
    )


class CommaListField(serializers.ListField):
    """A query parameter given repeated (``?status=a&status=b``) or comma-separated."""

    def to_internal_value(self, data: Any) -> list[Any]:
        if isinstance(data, str):
            data = [data]
        if isinstance(data, list) and all(isinstance(item, str) for item in data):
            data = [part.strip() for item in data for part in item.split(",") if part.strip()]
        return super().to_internal_value(data)


class JobFilterInput(serializers.Serializer):
    status = CommaListField(
        child=serializers.ChoiceField(choices=[*SyncJob.Status.values, ACTIVE_GROUP, FINISHED_GROUP]),
        required=False,
        help_text="Only jobs in these statuses; 'active' and 'finished' stand for their groups.",
    )
    kind = serializers.ChoiceField(choices=SyncJob.Kind.values, required=False)
    namespace = serializers.CharField(
        required=False, max_length=300, help_text="Namespace id, registry/namespace, or namespace name."
    )
    search = serializers.CharField(
        required=False, max_length=200, help_text="Part of the source or destination."
    )
    id = CommaListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
        required=False,
        max_length=100,
        help_text="Only these job ids (at most 100).",
    )
    all = serializers.BooleanField(required=False, default=False, help_text="Staff only: everyone's jobs.")
    owner = serializers.EmailField(
        required=False, help_text="Staff only: the jobs of the user with this email."
    )


# -- output ---------------------------------------------------------------------------------


class NamespaceBriefSerializer(serializers.ModelSerializer):
    name = serializers.SerializerMethodField(help_text="registry/namespace")

    class Meta:
        model = TargetNamespace
        fields = ["id", "registry", "namespace", "name"]

    def get_name(self, obj: TargetNamespace) -> str:
        return str(obj)


class NamespaceSerializer(NamespaceBriefSerializer):
    registry_label = serializers.CharField(read_only=True)
    repositories_used = serializers.IntegerField(
        read_only=True, help_text="Repositories that count against the quota: distinct repositories of this namespace's "
        "succeeded jobs and of its jobs still under way."
    )
    repositories_left = serializers.SerializerMethodField()
    can_push = serializers.BooleanField(read_only=True, help_text="Whether you may submit jobs into it.")

    class Meta(NamespaceBriefSerializer.Meta):
        fields = [
            *NamespaceBriefSerializer.Meta.fields,
            "description",
            "registry_label",
            "is_active",
            "repository_quota",
            "repositories_used",
            "repositories_left",
            "can_push",
        ]

    def get_repositories_left(self, obj: TargetNamespace) -> int:
        return max(0, obj.repository_quota - obj.repositories_used)


class TransitionSerializer(serializers.ModelSerializer):
    class Meta:
        model = JobTransition
        fields = ["from_status", "to_status", "at", "actor", "reason"]


class TagResultSerializer(serializers.Serializer):
    tag = serializers.CharField()
    outcome = serializers.ChoiceField(choices=["copied", "skipped", "failed", "not_attempted"])
    digest = serializers.CharField(allow_null=True)
    reason = serializers.CharField(allow_null=True)


class JobSerializer(serializers.ModelSerializer):
    namespace = NamespaceBriefSerializer(read_only=True)
    owner = serializers.SerializerMethodField()
    pull_command = serializers.SerializerMethodField(
        help_text="docker pull line of the copied image (copy only)."
    )
    github_run_url = serializers.SerializerMethodField(help_text="The workflow run on GitHub, once known.")

    class Meta:
        model = SyncJob
        fields = [
            "id",
            "kind",
            "status",
            "source",
            "destination",
            "namespace",
            "owner",
            "tag_include",
            "tag_exclude",
            "is_active",
            "is_finished",
            "pull_command",
            "github_run_id",
            "github_run_url",
            "conclusion",
            "error_message",
            "failed_step",
            "cancel_requested_at",
            "created_at",
            "updated_at",
            "dispatched_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    def to_representation(self, instance: SyncJob) -> dict[str, Any]:
        # The declared fields above describe the answer (the schema is made from them); this
        # builds the same dict directly, because DRF's field-by-field walk cost ~0.4 ms per job,
        # 20 ms for a page of 50 (docs/benchmarks-api.md). A test compares it with DRF's own walk.
        job = instance
        ns = job.namespace
        zone = timezone.get_current_timezone()
        return {
            "id": job.pk,
            "kind": job.kind,
            "status": job.status,
            "source": job.source,
            "destination": job.destination,
            "namespace": {"id": ns.pk, "registry": ns.registry, "namespace": ns.namespace, "name": str(ns)},
            "owner": self.get_owner(job),
            "tag_include": job.tag_include,
            "tag_exclude": job.tag_exclude,
            "is_active": job.is_active,
            "is_finished": job.is_finished,
            "pull_command": self.get_pull_command(job),
            "github_run_id": job.github_run_id,
            "github_run_url": self.get_github_run_url(job),
            "conclusion": job.conclusion,
            "error_message": job.error_message,
            "failed_step": job.failed_step,
            "cancel_requested_at": _datetime(job.cancel_requested_at, zone),
            "created_at": _datetime(job.created_at, zone),
            "updated_at": _datetime(job.updated_at, zone),
            "dispatched_at": _datetime(job.dispatched_at, zone),
            "started_at": _datetime(job.started_at, zone),
            "finished_at": _datetime(job.finished_at, zone),
        }

    def get_owner(self, obj: SyncJob) -> str | None:
        return obj.owner.email if obj.owner_id is not None else None

    def get_github_run_url(self, obj: SyncJob) -> str | None:
        return obj.github_run_url or None

    def get_pull_command(self, obj: SyncJob) -> str | None:
        return f"docker pull {obj.destination}" if obj.kind == SyncJob.Kind.COPY else None


class JobDetailSerializer(JobSerializer):
    transitions = TransitionSerializer(many=True, read_only=True)
    tags = serializers.SerializerMethodField(help_text="Per-tag outcomes reported by the workflow run.")
    result = serializers.JSONField(read_only=True, help_text="The run's raw IMAGESYNC-RESULT report.")

    class Meta(JobSerializer.Meta):
        fields = [*JobSerializer.Meta.fields, "log_excerpt", "tags", "result", "transitions"]
        read_only_fields = fields

    def to_representation(self, instance: SyncJob) -> dict[str, Any]:
        return {
            **super().to_representation(instance),
            "log_excerpt": instance.log_excerpt,
            "tags": self.get_tags(instance),
            "result": instance.result,
            "transitions": TransitionSerializer(instance.transitions.all(), many=True).data,
        }

    @extend_schema_field(TagResultSerializer(many=True))
    def get_tags(self, obj: SyncJob) -> list[dict[str, Any]]:
        return tag_results(obj.result)


class JobCreatedSerializer(JobSerializer):
    deduplicated = serializers.SerializerMethodField(
        help_text="True when an identical job of yours was still active and is returned instead of a new one."
    )

    class Meta(JobSerializer.Meta):
        fields = [*JobSerializer.Meta.fields, "deduplicated"]
        read_only_fields = fields

    def to_representation(self, instance: SyncJob) -> dict[str, Any]:
        return {**super().to_representation(instance), "deduplicated": self.get_deduplicated(instance)}

    def get_deduplicated(self, obj: SyncJob) -> bool:
        return bool(getattr(obj, "deduplicated", False))


class JobBatchCreatedSerializer(serializers.Serializer):
    jobs = JobCreatedSerializer(many=True)


class TokenInfoSerializer(serializers.Serializer):
    name = serializers.CharField()
    prefix = serializers.CharField()
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(allow_null=True)
    last_used_at = serializers.DateTimeField(allow_null=True)


class MeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()
    name = serializers.CharField(allow_blank=True)
    is_staff = serializers.BooleanField()
    authenticated_by = serializers.ChoiceField(choices=["token", "session"])
    token = TokenInfoSerializer(allow_null=True, help_text="The token of this request (null for a session).")
    portal_url = serializers.CharField(help_text="Where the portal's pages are.")


def _datetime(value: datetime | None, zone: tzinfo) -> str | None:
    """As DRF's DateTimeField shows it (ISO 8601 in the current time zone, UTC as Z), without
    looking the time zone up again for each of a page's 250 datetimes."""
    if value is None:
        return None
    text = value.astimezone(zone).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def tag_results(result: Any) -> list[dict[str, Any]]:
    """Per-tag outcomes from a run's report, tolerating reports that lack or mangle parts."""
    if not isinstance(result, dict):
        return []
    tags: list[dict[str, Any]] = []
    for outcome in ("copied", "skipped", "failed"):
        for entry in result.get(outcome) or []:
            if isinstance(entry, dict) and isinstance(entry.get("tag"), str):
                digest, reason = entry.get("digest"), entry.get("reason")
                tags.append(
                    {
                        "tag": entry["tag"],
                        "outcome": outcome,
                        "digest": digest if isinstance(digest, str) else None,
                        "reason": reason if isinstance(reason, str) else None,
                    }
                )
    for tag in result.get("not_attempted") or []:
        if isinstance(tag, str):
            tags.append({"tag": tag, "outcome": "not_attempted", "digest": None, "reason": None})
    return tags
