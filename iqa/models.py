"""Stored metric scores (a cache keyed by content) and benchmark runs."""

from django.db import models

from annotation.models import DistortedImage, Study


class MetricScore(models.Model):
    """One metric's value for one image (and its reference, for full-reference metrics).

    Keyed by content hashes and the metric's version, not by study: an image
    that appears in two studies, or a re-run, reuses the score."""

    metric = models.CharField(max_length=64)
    version = models.CharField(max_length=120, help_text="pyiqa version + checksum of the weights used")
    image_sha256 = models.CharField(max_length=64)
    reference_sha256 = models.CharField(max_length=64, blank=True, help_text="blank for no-reference metrics")
    value = models.FloatField()
    device = models.CharField(max_length=8)
    computed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["metric", "version", "image_sha256", "reference_sha256"], name="metric_score_unique"
            )
        ]
        indexes = [models.Index(fields=["metric", "image_sha256"], name="metric_score_image_idx")]

    def __str__(self) -> str:
        return f"{self.metric} {self.image_sha256[:8]} = {self.value:.4f}"


class ScoringFailure(models.Model):
    """An image a scoring job could not score with one metric version, and why: compute_scores and the
    owner API's scoring jobs report it instead of waiting for a score that will not come. Removed when
    the image's score is written (a later run after a fix)."""

    image = models.ForeignKey(DistortedImage, on_delete=models.CASCADE, related_name="scoring_failures")
    metric = models.CharField(max_length=64)
    version = models.CharField(max_length=120)
    error = models.TextField()
    attempts = models.PositiveIntegerField(default=1, help_text="Runs that failed on this image")
    failed_at = models.DateTimeField(help_text="The last failure")

    class Meta:
        ordering = ["metric", "image__name"]
        constraints = [
            models.UniqueConstraint(fields=["image", "metric", "version"], name="scoring_failure_unique_image")
        ]

    def __str__(self) -> str:
        return f"{self.metric} {self.image_id}: {self.error[:60]}"


class BenchmarkRun(models.Model):
    """A run_benchmark report: its files live under PIPAL_PRIVATE_ROOT/<folder>/ (never public)."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="benchmark_runs")
    created_at = models.DateTimeField(auto_now_add=True)
    metrics = models.JSONField(help_text="metric name -> version used")
    images = models.PositiveIntegerField()
    folder = models.CharField(max_length=300)
    files = models.JSONField(default=list)
    summary = models.JSONField(default=dict, help_text="metric name -> whole-study SRCC")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"benchmark {self.study.slug} {self.created_at:%Y-%m-%d %H:%M}"
