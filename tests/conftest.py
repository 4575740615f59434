"""Shared fixtures: studies built from small generated PIPAL-layout folders,
API clients, and the switch that turns a missing service into a failure."""

from __future__ import annotations

import io
import os
import socket
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from rest_framework.test import APIClient

from annotation.imports.folders import images_import, plan_folder_import
from annotation.studies import study_create

# Metric weights the tests download or build go to a fresh torch hub dir, never
# the user's cache: set before pyiqa is imported (it reads the dir at import).
os.environ["TORCH_HOME"] = tempfile.mkdtemp(prefix="pipal-torch-home-")

# .ci/run sets this: a test that needs PostgreSQL or Redis fails instead of
# skipping when the service is missing.
REQUIRE_SERVICES = os.environ.get("PIPAL_REQUIRE_SERVICES") == "1"
REDIS_URL = os.environ.get("PIPAL_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def require_service(name: str, host: str, port: int) -> None:
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError as error:
        message = f"{name} not reachable at {host}:{port} ({error})"
        if REQUIRE_SERVICES:
            pytest.fail(f"{message}; PIPAL_REQUIRE_SERVICES=1 makes this a failure")
        pytest.skip(message)


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


def png_bytes(seed: int, size: tuple[int, int] = (32, 32)) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def make_pipal_folder(
    root: Path,
    *,
    references: int = 2,
    types: tuple[str, ...] = ("01", "02"),
    levels: tuple[int, ...] = (1, 2),
    size: tuple[int, int] = (32, 32),
    type_csv: bool = True,
) -> Path:
    """A PIPAL-layout folder of random images: Ref/R000k.png and Dis/R000k_TT_LL.png."""
    (root / "Ref").mkdir(parents=True, exist_ok=True)
    (root / "Dis").mkdir(parents=True, exist_ok=True)
    seed = 0
    for r in range(1, references + 1):
        ref = f"R{r:04d}"
        (root / "Ref" / f"{ref}.png").write_bytes(png_bytes(seed := seed + 1, size))
        for code in types:
            for level in levels:
                (root / "Dis" / f"{ref}_{code}_{level:02d}.png").write_bytes(png_bytes(seed := seed + 1, size))
    if type_csv:
        rows = ["id,name,category,subtype"]
        categories = ["traditional", "super_resolution", "denoising", "mixture"]
        rows += [f"{code},Type {code},{categories[i % 4]},sub{code}" for i, code in enumerate(types)]
        (root / "distortion_types.csv").write_text("\n".join(rows) + "\n")
    return root


def import_folder(study, folder: Path):
    return images_import(study=study, plan=plan_folder_import(study, folder))


NO_CONTROLS = {"training_trials": 0, "gold_every": 0, "min_vote_interval_ms": 0, "trials_per_rater": 10_000}


def plain_study(slug: str, name: str = "", **fields):
    """A study without training, gold pairs or rate limit, for tests of the core mechanics."""
    study = study_create(slug=slug, name=name)
    for key, value in {**NO_CONTROLS, **fields}.items():
        setattr(study, key, value)
    study.save()
    return study


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


def join(api: APIClient, slug: str, external_id: str) -> APIClient:
    """A client authenticated as a new rater of the study."""
    response = api.post(f"/api/studies/{slug}/raters/", {"external_id": external_id}, format="json")
    assert response.status_code == 201, response.content
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['token']}")
    return client
