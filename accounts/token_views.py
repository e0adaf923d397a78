"""The "API tokens" page: list your tokens, create one (its secret shown once), revoke one."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from accounts import tokens as api_tokens
from accounts.models import ApiToken

EXPIRY_CHOICES = [
    ("30", _("in 30 days")),
    ("90", _("in 90 days")),
    ("365", _("in a year")),
    ("", _("never")),
]


class TokenForm(forms.Form):
    name = forms.CharField(
        label=_("Name"),
        max_length=api_tokens.MAX_NAME_LENGTH,
        help_text=_("What uses it, e.g. “laptop” or “CI nightly sync”."),
    )
    expires = forms.ChoiceField(label=_("Expires"), choices=EXPIRY_CHOICES, initial="90", required=False)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def tokens(request: HttpRequest) -> HttpResponse:
    created_secret = None
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        days = form.cleaned_data["expires"]
        try:
            _row, created_secret = api_tokens.token_create(
                user=request.user, name=form.cleaned_data["name"], expires_in_days=int(days) if days else None
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                for error in errors:
                    form.add_error(field if field in form.fields else None, error)
        else:
            # The secret is rendered in this response only (never_cache), never stored or redirected.
            form = TokenForm()
    status = 400 if form.errors else 200
    now = timezone.now()
    rows = [(row, row.state(now)) for row in ApiToken.objects.filter(user=request.user)]
    context = {"form": form, "tokens": rows, "created_secret": created_secret}
    return render(request, "accounts/tokens.html", context, status=status)


@login_required
@require_POST
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    row = get_object_or_404(ApiToken, pk=pk, user=request.user)
    if api_tokens.token_revoke(token=row):
        messages.success(request, _("Token “%(name)s” revoked: it no longer works.") % {"name": row.name})
    else:
        messages.info(request, _("Token “%(name)s” was already revoked.") % {"name": row.name})
    return redirect("api_tokens")
