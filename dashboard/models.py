"""The owner API's records: the tokens scripts authenticate with, and the jobs they start."""

from django.conf import settings
from django.db import models

from annotation.models import Study


class OwnerToken(models.Model):
    """A study owner's API credential. Only the SHA-256 of its secret is stored (the secret
    is shown once, when the token is made). An empty scope reaches every study the user
    owns (staff: every study); a scope narrows that to the studies named."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="owner_tokens")
    name = models.CharField(max_length=100, blank=True, help_text="What the token is for, e.g. 'nightly export'")
    secret_hash = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the secret")
    studies = models.ManyToManyField(
        Study, blank=True, related_name="owner_tokens", help_text="Scope: empty means every study the user owns"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True, help_text="Set: the token no longer authenticates")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"token {self.pk} of {self.user} ({self.name or 'unnamed'})"

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


class OwnerJob(models.Model):
    """Work an owner started through the API (generation, scoring, a benchmark run), polled
    by id until it is done or failed."""

    class Kind(models.TextChoices):
        GENERATE = "generate"
        SCORE = "score"
        BENCHMARK = "benchmark"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="owner_jobs")
    token = models.ForeignKey(OwnerToken, on_delete=models.SET_NULL, null=True, blank=True, related_name="jobs")
    params = models.JSONField(default=dict, blank=True, help_text="What the job was asked to do")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    done = models.PositiveIntegerField(default=0, help_text="Units finished (images, or metrics of a benchmark)")
    total = models.PositiveIntegerField(default=0, help_text="Units to finish (0 until the job has planned)")
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} job {self.pk} of {self.study.slug} ({self.status})"
