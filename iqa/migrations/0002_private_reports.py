"""Benchmark reports leave the public media folder for PIPAL_PRIVATE_ROOT (issue 15)."""

from pathlib import Path

from django.conf import settings
from django.db import migrations


def move_reports(apps, schema_editor):
    from iqa.private_move import move_reports_out_of_media

    move_reports_out_of_media(Path(settings.MEDIA_ROOT), Path(settings.PIPAL_PRIVATE_ROOT))


class Migration(migrations.Migration):
    dependencies = [("iqa", "0001_initial")]

    operations = [migrations.RunPython(move_reports, migrations.RunPython.noop, elidable=True)]
