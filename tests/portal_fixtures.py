"""Fixtures the portal's view tests share (imported by each tests/test_portal_*.py)."""

from __future__ import annotations

import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def fresh_limits():
    # Rate limits live in the shared cache (Redis DB 15 for the whole session): every test
    # starts with nothing counted, and leaves nothing behind for the next one.
    cache.clear()
    yield
    cache.clear()
