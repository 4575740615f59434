"""Rater completion codes unique per study: a study-wide code moves off the raters first
(in a migration of its own, so the data change and the new constraint are separate
transactions on PostgreSQL)."""

from django.db import migrations


def study_codes_off_raters(apps, schema_editor):
    """A study-wide code now lives on the study only (rater codes are unique per study); and
    open control trials of the old kind (pictures taken from the reference) are retired."""
    Rater = apps.get_model("annotation", "Rater")
    ControlTrial = apps.get_model("annotation", "ControlTrial")
    for rater in Rater.objects.exclude(study__completion_code="").select_related("study"):
        if rater.completion_code == rater.study.completion_code:
            Rater.objects.filter(pk=rater.pk).update(completion_code="")
    ControlTrial.objects.filter(status="open", left_file="").update(status="retired")


class Migration(migrations.Migration):
    dependencies = [("annotation", "0008_crowd_study")]

    operations = [migrations.RunPython(study_codes_off_raters, migrations.RunPython.noop)]
