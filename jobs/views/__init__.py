"""The portal's job pages, split by subject: submit, listing, detail, actions."""

from __future__ import annotations

from jobs.views.actions import job_cancel_view, job_delete_view, job_retry_view
from jobs.views.detail import job_detail
from jobs.views.listing import job_list, job_status
from jobs.views.submit import job_batch, job_new

__all__ = [
    "job_batch",
    "job_cancel_view",
    "job_delete_view",
    "job_detail",
    "job_list",
    "job_new",
    "job_retry_view",
    "job_status",
]
