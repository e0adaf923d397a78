from __future__ import annotations

import pytest
from django.utils import translation

from accounts.models import User
from jobs.models import TargetNamespace
from tests.factories import NamespaceFactory, UserFactory

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def english_outside_requests():
    """Code run outside a request speaks English, whatever an earlier request activated.

    LANGUAGE_CODE is zh-hans and LocaleMiddleware leaves the last request's language active in
    the thread, so without this a test's language would depend on the tests run before it.
    Requests still choose their own language (Accept-Language, cookie, zh-hans by default).
    """
    with translation.override("en"):
        yield


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    # The personas' passwords are hashed with the production hasher otherwise (~0.3 s each).
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def unpaced_dispatch(settings):
    # Dispatches are paced a second apart across the portal; tests that dispatch several jobs
    # in a row would wait for nothing. test_dispatch.py checks the pacing itself.
    settings.IMAGESYNC_DISPATCH_SPACING = 0


@pytest.fixture
def alice(db) -> User:
    """Owns jobs in the team namespace."""
    return UserFactory(email="alice@example.com")


@pytest.fixture
def bob(db) -> User:
    """Alice's teammate: a member of the same namespace."""
    return UserFactory(email="bob@example.com")


@pytest.fixture
def charlie(db) -> User:
    """An outsider: must see nothing of alice's."""
    return UserFactory(email="charlie@example.com")


@pytest.fixture
def staff(db) -> User:
    return UserFactory(email="admin@example.com", is_staff=True, is_superuser=True)


@pytest.fixture
def team_namespace(alice: User, bob: User) -> TargetNamespace:
    return NamespaceFactory(namespace="team", members=[alice, bob])
