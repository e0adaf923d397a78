from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.models import SyncJob, WebhookDelivery
from jobs.services import stale_jobs
from jobs.tasks import sweep_stuck_jobs
from tests.factories import JobFactory


@pytest.mark.django_db
def test_the_sweeper_picks_up_jobs_whose_message_was_lost(settings):
    now = timezone.now()
    old = now - timedelta(minutes=5)
    lost = JobFactory()
    SyncJob.objects.filter(pk=lost.pk).update(created_at=old)
    fresh = JobFactory()  # its message is probably still on its way
    deferred = JobFactory(dispatch_after=now + timedelta(minutes=1))
    SyncJob.objects.filter(pk=deferred.pk).update(created_at=old)
    stuck = JobFactory(status="dispatching", dispatch_started_at=old)
    in_flight = JobFactory(status="dispatching", dispatch_started_at=now)
    stale = stale_jobs(now)
    assert stale["dispatch"] == [lost.pk]
    assert stale["resolve"] == [stuck.pk]
    assert fresh.pk not in stale["dispatch"] and in_flight.pk not in stale["resolve"]


@pytest.mark.django_db
def test_the_sweeper_prunes_old_webhook_deliveries(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    old = WebhookDelivery.objects.create(guid="old", event="workflow_run")
    WebhookDelivery.objects.filter(pk=old.pk).update(received_at=timezone.now() - timedelta(days=8))
    WebhookDelivery.objects.create(guid="new", event="workflow_run")
    result = sweep_stuck_jobs()
    assert result["deliveries_pruned"] == 1
    assert list(WebhookDelivery.objects.values_list("guid", flat=True)) == ["new"]
