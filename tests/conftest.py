"""Shared fixtures: studies built from small generated PIPAL-layout folders, API clients, the
device tests run their networks on, and the marks the two database passes select by. What the
fixtures build with lives in tests/factories.py (shared with bench/)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from tests.factories import REDIS_URL, import_folder, make_pipal_folder, plain_study, require_service

# Metric weights the tests download or build go to a fresh torch hub dir, never
# the user's cache: set before pyiqa is imported (it reads the dir at import).
os.environ["TORCH_HOME"] = tempfile.mkdtemp(prefix="pipal-torch-home-")

# Fixtures that open the test database: a test that uses one (or pytest-django's django_db
# mark) is marked `database`, and test.sh's PostgreSQL pass runs only those; the rest (pure
# maths, networks, file formats) does not depend on the database and runs once, on SQLite.
DATABASE_FIXTURES = frozenset(
    {"db", "transactional_db", "django_db_reset_sequences", "django_db_serialized_rollback", "live_server"}
    | {"admin_client", "admin_user", "django_user_model"}
)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("django_db") or DATABASE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.database)


@pytest.fixture
def device() -> str:
    """Where a test runs its networks: PIPAL_TEST_DEVICE (``cpu`` by default, ``cuda`` on a
    machine with a GPU); a wanted GPU that is missing fails the test rather than skipping it."""
    wanted = os.environ.get("PIPAL_TEST_DEVICE", "cpu")
    if wanted.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            pytest.fail(f"PIPAL_TEST_DEVICE={wanted} but torch sees no CUDA GPU")
    return wanted


@pytest.fixture
def redis_url() -> str:
    require_service("Redis", "127.0.0.1", 6379)
    return REDIS_URL


@pytest.fixture(autouse=True)
def fresh_cache():
    """Pages cache their figures per study id (dashboard/page_cache.py); ids repeat across tests."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PIPAL_PRIVATE_ROOT = tmp_path / "private"
    return settings.MEDIA_ROOT


@pytest.fixture
def study(db):
    return plain_study("s1", "Study one")


@pytest.fixture
def small_study(study, tmp_path):
    """2 references x 2 types x 2 levels = 8 images, 4 per reference."""
    import_folder(study, make_pipal_folder(tmp_path / "data"))
    return study


@pytest.fixture
def api() -> APIClient:
    return APIClient()
