"""The owner pages' costly parts, cached per study until its data changes.

A page's charts and figures (matplotlib charts, judgments per hour, score coverage) cost
seconds at PIPAL scale (1.13M judgments). They are cached under the study's *data version* —
a few indexed reads that change whenever a judgment, image, fit, exclusion or score does —
so a page answers from the cache while nothing changed. A running study changes every
second: there the cached value is served until it is REFRESH_SECONDS old and only then
computed again, so at most one request a minute pays for it (the page says how old it is).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from django.core.cache import cache
from django.db.models import Count, Max, Q, Sum

from annotation.models import Judgment, Study

REFRESH_SECONDS = 60
TIMEOUT_SECONDS = 24 * 3600


@dataclass(frozen=True)
class Cached:
    value: object
    computed_at: float  # time.time()
    current: bool  # computed from the data as it is now

    @property
    def stale_since(self) -> datetime | None:
        """When a value that no longer reflects the data was computed (None: it does)."""
        return None if self.current else datetime.fromtimestamp(self.computed_at, tz=UTC)


def study_version(study: Study) -> tuple:
    """What the study's pages depend on, read cheaply: the newest judgment (an index's end),
    the images and their judgment counts (one row each), raters excluded, the newest fit,
    benchmark run, label import and score."""
    cached = getattr(study, "_page_version", None)
    if cached is not None:
        return cached
    from iqa.models import BenchmarkRun, MetricScore  # the pages show both apps' figures

    last = Judgment.objects.filter(study=study).order_by("-id").values_list("id", flat=True).first()
    images = study.images.aggregate(n=Count("id"), judged=Sum("judgment_count"), mos=Sum("mos"))
    raters = study.raters.aggregate(n=Count("id"), n_excluded=Count("id", filter=Q(excluded=True)))
    version = (
        last,
        images["n"],
        images["judged"],
        images["mos"],  # a recompute (raters excluded or let back in) changes it
        raters["n"],
        raters["n_excluded"],
        study.bt_fits.aggregate(last=Max("id"))["last"],
        BenchmarkRun.objects.filter(study=study).aggregate(last=Max("id"))["last"],
        study.label_imports.aggregate(last=Max("id"))["last"],
        MetricScore.objects.aggregate(last=Max("id"))["last"],
    )
    study._page_version = version
    return version


def cached(study: Study, part: str, compute: Callable[[], object], *key: object) -> Cached:
    """``compute()`` for this study, from the cache while the study's data has not changed (and
    for at most REFRESH_SECONDS after it has)."""
    name = f"pipal-page:{study.pk}:{part}:" + ":".join(str(item) for item in key)
    version = study_version(study)
    entry = cache.get(name)
    now = time.time()
    if entry is not None:
        entry_version, computed_at, value = entry
        if entry_version == version:
            return Cached(value, computed_at, True)
        if now - computed_at < REFRESH_SECONDS:
            return Cached(value, computed_at, False)
    value = compute()
    cache.set(name, (version, now, value), TIMEOUT_SECONDS)
    return Cached(value, now, True)
