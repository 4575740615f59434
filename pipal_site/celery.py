"""The Celery application.

With no CELERY_BROKER_URL in the environment the settings turn on
``task_always_eager``, so tasks run in-process (the embedded default); with a
broker (Redis or RabbitMQ) they go to real workers:
``celery -A pipal_site worker``.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pipal_site.settings.local")

app = Celery("pipal_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
