"""What every Celery task shares."""

from django.conf import settings


def time_limits(task: str) -> dict:
    """A task's hard and soft time limits from settings.PIPAL_TASK_TIME_LIMITS (the broker's
    visibility timeout is derived from the longest): the soft limit raises inside the task at
    90%, so it can fail cleanly before the hard limit kills the worker process."""
    hard = settings.PIPAL_TASK_TIME_LIMITS[task]
    return {"time_limit": hard, "soft_time_limit": int(hard * 0.9)}


class RecordedFailure(Exception):
    """A task's failure already recorded where people look for it (a generation or scoring failure
    row): raised so Celery marks the task failed too, and its ``on_failure`` records nothing again."""
