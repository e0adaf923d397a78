"""Helpers and fixtures for the API and CLI tests (import the fixtures you use into the module)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tokens import token_create

API = "/api/v1"


def token_for(user: User, name: str = "test", **kwargs: Any) -> str:
    return token_create(user=user, name=name, **kwargs)[1]


def client_for(user: User | None, token: str | None = None) -> APIClient:
    """An API client sending ``user``'s token (a fresh one unless given); anonymous for None."""
    client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token or token_for(user, name=uuid.uuid4().hex)}")
    return client


@pytest.fixture(autouse=False)
def fresh_throttles(settings: Any) -> Iterator[None]:
    """Throttle counts of this test alone: a cache key prefix no other test (or run) shares."""
    caches = {name: dict(conf) for name, conf in settings.CACHES.items()}
    caches["default"]["KEY_PREFIX"] = f"test-{uuid.uuid4().hex}"
    settings.CACHES = caches
    yield


@pytest.fixture
def no_dispatch(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Record the tasks job services would enqueue on commit instead of sending them to a broker.

    Only tests whose transactions really commit (live server) reach on_commit; no worker runs
    there, so jobs stay where the test puts them.
    """
    sent: list[tuple[str, int]] = []
    monkeypatch.setattr(
        "jobs.services._enqueue_on_commit", lambda name, job_id, countdown=None: sent.append((name, job_id))
    )
    return sent


def rates(settings: Any, **scopes: str) -> None:
    """Change throttle rates for this test (read on each request)."""
    framework = dict(settings.REST_FRAMEWORK)
    framework["DEFAULT_THROTTLE_RATES"] = {**framework["DEFAULT_THROTTLE_RATES"], **scopes}
    settings.REST_FRAMEWORK = framework
