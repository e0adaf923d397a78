"""Portal forms. They check the shape of what was typed; ``jobs.services`` decides the rest."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from jobs import submit
from jobs.models import SyncJob, TargetNamespace, repository_counts

# Enough for a long images.txt, small enough that one request stays quick.
MAX_BATCH_LINES = 200


class NamespaceSelect(forms.Select):
    """A select whose options carry the namespace's name, so the page can derive destinations."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.names: dict[str, str] = {}

    def create_option(self, name: str, value: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        option = super().create_option(name, value, *args, **kwargs)
        key = str(getattr(value, "value", value))
        if key in self.names:
            option["attrs"]["data-namespace"] = self.names[key]
        return option


class NamespaceField(forms.ModelChoiceField):
    """A choice among the namespaces a user may push to, each labelled with its quota use."""

    widget = NamespaceSelect

    def __init__(self, user: Any, **kwargs: Any) -> None:
        queryset = TargetNamespace.objects.pushable_by(user)
        super().__init__(queryset=queryset, **kwargs)
        namespaces = list(queryset)
        self.usage = repository_counts([ns.pk for ns in namespaces])
        self.widget.names = {str(ns.pk): ns.namespace for ns in namespaces}

    def label_from_instance(self, obj: TargetNamespace) -> str:
        return _("%(namespace)s (%(used)s of %(quota)s repositories used)") % {
            "namespace": obj,
            "used": self.usage.get(obj.pk, 0),
            "quota": obj.repository_quota,
        }


def _initial_namespace(user: Any, field: NamespaceField) -> int | None:
    default = getattr(user, "default_namespace_id", None)
    if default and field.queryset.filter(pk=default).exists():
        return default
    first = field.queryset.first()
    return first.pk if first else None


def _add_namespace_field(form: forms.Form, user: Any, order: Any) -> None:
    """The user's namespaces as a choice, pre-selecting their default one on a new form."""
    field = NamespaceField(
        user,
        label=_("Target namespace"),
        empty_label=None,
        error_messages={"invalid_choice": _("Choose one of your namespaces.")},
    )
    form.fields["namespace"] = field
    form.order_fields(order)
    if not form.is_bound:
        form.initial.setdefault("namespace", _initial_namespace(user, field))


class ClashChoice:
    """How the user answered a name-clash warning (the two submit buttons of the warning)."""

    SUGGESTED = submit.RENAME
    KEEP = submit.KEEP
    CHOICES = ((SUGGESTED, _("Use the suggested name")), (KEEP, _("Keep the name")))


class JobForm(forms.Form):
    source = forms.CharField(
        label=_("Source image"),
        max_length=1024,
        help_text=_("As you would pull it, e.g. nginx:1.27, bitnami/redis or ghcr.io/owner/app:v1."),
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "spellcheck": "false", "autocapitalize": "none", "placeholder": "nginx:1.27"}
        ),
    )
    kind = forms.ChoiceField(
        label=_("What to do"), choices=SyncJob.Kind.choices, initial=SyncJob.Kind.COPY, widget=forms.RadioSelect
    )
    destination = forms.CharField(
        label=_("Destination"),
        max_length=1024,
        required=False,
        help_text=_(
            "namespace/name:tag. Filled in from the source as you type; change it to rename. "
            "A sync always goes to namespace/name."
        ),
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false", "autocapitalize": "none"}),
    )
    tag_include = forms.CharField(
        label=_("Only tags matching"),
        max_length=200,
        required=False,
        help_text=_(r"A regular expression, e.g. ^7\.\d+$ (sync only)."),
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    tag_exclude = forms.CharField(
        label=_("Skip tags matching"),
        max_length=200,
        required=False,
        help_text=_("A regular expression, e.g. (alpha|beta|rc) (sync only)."),
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    clash = forms.ChoiceField(choices=ClashChoice.CHOICES, required=False, widget=forms.HiddenInput)

    field_order = ("source", "kind", "namespace", "destination", "tag_include", "tag_exclude")

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, label_suffix="", **kwargs)
        _add_namespace_field(self, user, self.field_order)

    @property
    def namespace_usage(self) -> list[tuple[TargetNamespace, int]]:
        field = self.fields["namespace"]
        return [(ns, field.usage.get(ns.pk, 0)) for ns in field.queryset]


class BatchForm(forms.Form):
    namespace: NamespaceField
    kind = forms.ChoiceField(
        label=_("What to do"), choices=SyncJob.Kind.choices, initial=SyncJob.Kind.COPY, widget=forms.RadioSelect
    )
    images = forms.CharField(
        label=_("Images, one per line"),
        strip=False,
        help_text=_(
            "Each line: a source image, optionally followed by a space and a destination "
            "(namespace/name:tag). Blank lines and lines starting with # are ignored."
        ),
        widget=forms.Textarea(attrs={"rows": 12, "spellcheck": "false", "autocapitalize": "none"}),
    )
    clash = forms.ChoiceField(choices=ClashChoice.CHOICES, required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, label_suffix="", **kwargs)
        _add_namespace_field(self, user, ["images", "kind", "namespace"])

    def clean_images(self) -> list[tuple[int, str, str]]:
        """``(line number, source, destination)`` for every line that names an image."""
        entries: list[tuple[int, str, str]] = []
        problems: list[str] = []
        for number, line in enumerate(self.cleaned_data["images"].splitlines(), start=1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            words = text.split()
            if len(words) > 2:
                problems.append(
                    str(_("Line %(line)d: expected an image, optionally followed by a destination; found %(n)d words.")
                        % {"line": number, "n": len(words)})
                )
                continue
            entries.append((number, words[0], words[1] if len(words) == 2 else ""))
        if problems:
            raise forms.ValidationError(problems)
        if not entries:
            raise forms.ValidationError(_("No image found: write one image per line."))
        if len(entries) > MAX_BATCH_LINES:
            raise forms.ValidationError(
                _("At most %(max)d images at a time; this has %(n)d.") % {"max": MAX_BATCH_LINES, "n": len(entries)}
            )
        return entries


class JobFilterForm(forms.Form):
    """The job list's search and filters (GET). Bad values are reported and ignored."""

    ACTIVE = "active"

    q = forms.CharField(
        label=_("Search by image"),
        required=False,
        max_length=200,
        widget=forms.SearchInput(attrs={"placeholder": _("e.g. redis")}),
    )
    status = forms.ChoiceField(label=_("Status"), required=False)
    kind = forms.ChoiceField(
        label=_("Kind"), required=False, choices=[("", _("Any kind")), *SyncJob.Kind.choices]
    )
    namespace = forms.ModelChoiceField(
        label=_("Namespace"), required=False, queryset=TargetNamespace.objects.none(), empty_label=_("Any namespace")
    )
    scope = forms.ChoiceField(
        label=_("Whose jobs"),
        required=False,
        choices=[("mine", _("My jobs")), ("all", _("Everyone's jobs"))],
    )

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, label_suffix="", **kwargs)
        self.fields["status"].choices = [
            ("", _("Any status")),
            (self.ACTIVE, _("Active (not finished)")),
            *SyncJob.Status.choices,
        ]
        if user.is_staff:
            self.fields["namespace"].queryset = TargetNamespace.objects.all()
        else:
            mine = TargetNamespace.objects.pushable_by(user).values("pk")
            used = SyncJob.objects.filter(owner=user).values("namespace_id")
            self.fields["namespace"].queryset = TargetNamespace.objects.filter(
                Q(pk__in=mine) | Q(pk__in=used)
            ).distinct()
            del self.fields["scope"]


class DefaultNamespaceForm(forms.Form):
    namespace = forms.ModelChoiceField(
        label=_("Default namespace"),
        required=False,
        queryset=TargetNamespace.objects.none(),
        empty_label=_("None (the first of my namespaces)"),
        help_text=_("Pre-selected on the submit form. Submitting a job to another namespace changes it."),
    )

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, label_suffix="", **kwargs)
        self.fields["namespace"].queryset = TargetNamespace.objects.pushable_by(user)
