from __future__ import annotations

from django.urls import path

from accounts import views

urlpatterns = [
    # Ahead of allauth's own login/ (same path and name), so that too many failed attempts
    # answer 429; the admin's sign-in page redirects here too.
    path("login/", views.login, name="account_login"),
    path("profile/", views.profile, name="profile"),
]
