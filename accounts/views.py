"""Account pages of the portal: sign-in (allauth's, answering 429 when locked) and the profile."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from allauth.account.adapter import get_adapter
from allauth.account.views import LoginView
from allauth.mfa.models import Authenticator
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from accounts.models import User
from jobs.forms import DefaultNamespaceForm
from jobs.models import TargetNamespace, repository_counts

# ACCOUNT_RATE_LIMITS["login_failed"] counts failures over this window (settings).
LOGIN_LOCK_SECONDS = 15 * 60


class RateLimitedLoginView(LoginView):
    """allauth's sign-in, except that a locked account or address gets a 429 page.

    allauth refuses the sixth failed attempt with a form error and status 200; a 429 says the
    same to people and to scripts, and the page says how long to wait.
    """

    def get_form(self, form_class: Any = None) -> Any:
        form = super().get_form(form_class)
        form.label_suffix = ""  # labels stand above their fields, as on every other page
        return form

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        # Sign-up is closed unless OPEN_SIGNUP: then the page must not invite people to it.
        context["signup_enabled"] = get_adapter(self.request).is_open_for_signup(self.request)
        return context

    def form_invalid(self, form: Any) -> HttpResponse:
        codes = {error.code for errors in form.errors.as_data().values() for error in errors}
        if "too_many_login_attempts" in codes:
            response = render(
                self.request,
                "429.html",
                {"reason": "login", "wait_minutes": LOGIN_LOCK_SECONDS // 60},
                status=HTTPStatus.TOO_MANY_REQUESTS,
            )
            response["Retry-After"] = str(LOGIN_LOCK_SECONDS)
            return response
        return super().form_invalid(form)


login = RateLimitedLoginView.as_view()


@login_required
def profile(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    if request.method == "POST":
        form = DefaultNamespaceForm(request.POST, user=user)
        if form.is_valid():
            namespace = form.cleaned_data["namespace"]
            User.objects.filter(pk=user.pk).update(default_namespace=namespace)
            messages.success(request, _("Default namespace saved."))
            return redirect("profile")
    else:
        form = DefaultNamespaceForm(user=user, initial={"namespace": user.default_namespace_id})
    namespaces = list(TargetNamespace.objects.pushable_by(user))
    used = repository_counts([ns.pk for ns in namespaces])
    return render(
        request,
        "accounts/profile.html",
        {
            "form": form,
            "namespaces": [(ns, used.get(ns.pk, 0)) for ns in namespaces],
            "job_count": user.jobs.count(),
            "two_factor": Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists(),
        },
    )
