"""The Celery application.

With no CELERY_BROKER_URL in the environment the settings turn on
``task_always_eager``, so tasks run in-process (the embedded default); with a
broker (Redis or RabbitMQ) they go to real workers:
``celery -A pipal_site worker``.
"""

import os

from celery import Celery
from celery.signals import worker_init, worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pipal_site.settings.local")

app = Celery("pipal_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
@worker_process_init.connect
def limit_torch_threads(**kwargs):
    """PIPAL_TORCH_THREADS: torch's intra-op threads in each worker process. Several workers on
    one machine each default to every core, and oversubscribe it: bench/compute_scores.py measured
    two workers at 0.39x one worker with torch's default threads, 1.07x with one thread each on
    2 cores. Set it to cores / workers."""
    threads = os.environ.get("PIPAL_TORCH_THREADS")
    if threads:
        import torch

        torch.set_num_threads(int(threads))
