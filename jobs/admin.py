from __future__ import annotations

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from jobs.models import JobTransition, SyncJob, TargetNamespace


@admin.register(TargetNamespace)
class TargetNamespaceAdmin(admin.ModelAdmin):
    list_display = ["__str__", "registry_label", "credential_secret", "repository_quota", "member_count", "is_active"]
    list_filter = ["is_active", "registry"]
    search_fields = ["registry", "namespace", "description"]
    filter_horizontal = ["members", "member_groups"]
    fields = [
        "registry",
        "namespace",
        "description",
        "members",
        "member_groups",
        "credential_secret",
        "repository_quota",
        "is_active",
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[TargetNamespace]:
        return super().get_queryset(request).annotate(_member_count=Count("members", distinct=True))

    @admin.display(description=_("members"), ordering="_member_count")
    def member_count(self, obj: TargetNamespace) -> int:
        return obj._member_count  # type: ignore[attr-defined]

    @admin.display(description=_("registry kind"))
    def registry_label(self, obj: TargetNamespace) -> str:
        return obj.registry_label


class JobTransitionInline(admin.TabularInline):
    model = JobTransition
    extra = 0
    can_delete = False
    fields = ["at", "from_status", "to_status", "actor", "reason"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(SyncJob)
class SyncJobAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "source", "destination", "status", "owner", "namespace", "created_at", "run_link"]
    list_filter = ["status", "kind", "namespace", "owner"]
    list_select_related = ["owner", "namespace"]
    search_fields = ["source", "destination", "=request_id", "=github_run_id", "owner__email"]
    date_hierarchy = "created_at"
    inlines = [JobTransitionInline]
    # The status only moves through the state machine (jobs/services.py), never by hand here,
    # and the run fields only come from GitHub.
    readonly_fields = [
        "request_id",
        "status",
        "run_link",
        "github_run_id",
        "github_run_number",
        "github_run_attempt",
        "github_run_url",
        "conclusion",
        "error_message",
        "created_at",
        "updated_at",
        "dispatched_at",
        "started_at",
        "finished_at",
    ]
    fieldsets = [
        (None, {"fields": ["owner", "namespace", "kind", "source", "destination", "request_id", "status"]}),
        (
            _("GitHub run"),
            {"fields": ["run_link", "github_run_id", "github_run_number", "github_run_attempt", "conclusion", "error_message"]},
        ),
        (_("Times"), {"fields": ["created_at", "updated_at", "dispatched_at", "started_at", "finished_at"]}),
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Jobs are created through the portal, API or CLI, which validate and dispatch them.
        return False

    def get_readonly_fields(self, request: HttpRequest, obj: SyncJob | None = None) -> list[str]:
        if obj is not None:
            return [*self.readonly_fields, "owner", "namespace", "kind", "source", "destination"]
        return list(self.readonly_fields)

    @admin.display(description=_("run"))
    def run_link(self, obj: SyncJob) -> str:
        if not obj.github_run_url:
            return "—"
        label = f"#{obj.github_run_number}" if obj.github_run_number else str(obj.github_run_id)
        return format_html('<a href="{}" target="_blank" rel="noopener">{}</a>', obj.github_run_url, label)
