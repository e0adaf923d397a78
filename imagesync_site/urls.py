from __future__ import annotations

from allauth.account.decorators import secure_admin_login
from django.contrib import admin
from django.urls import include, path

from accounts import token_views
from imagesync_site import views
from jobs.views import job_list
from jobs.webhooks import github_webhook

# The admin signs in through allauth, so it gets allauth's login rate limits and MFA.
admin.site.login = secure_admin_login(admin.site.login)  # type: ignore[method-assign]
admin.site.site_header = "imagesync"
admin.site.site_title = "imagesync"

urlpatterns = [
    path("", job_list, name="home"),
    path("jobs/", include("jobs.urls")),
    path("healthz", views.healthz, name="healthz"),
    path("github/webhook", github_webhook, name="github_webhook"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/", include("jobs.api.urls")),
    path("accounts/tokens/", token_views.tokens, name="api_tokens"),
    path("accounts/tokens/<int:pk>/revoke/", token_views.token_revoke, name="api_token_revoke"),
    path("accounts/", include("accounts.urls")),
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
]
