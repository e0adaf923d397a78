from __future__ import annotations

from django.urls import path

from jobs import views

app_name = "jobs"

urlpatterns = [
    path("new/", views.job_new, name="new"),
    path("batch/", views.job_batch, name="batch"),
    path("status/", views.job_status, name="status"),
    path("<int:pk>/", views.job_detail, name="detail"),
    path("<int:pk>/cancel/", views.job_cancel_view, name="cancel"),
    path("<int:pk>/retry/", views.job_retry_view, name="retry"),
    path("<int:pk>/delete/", views.job_delete_view, name="delete"),
]
