"""Fill the new rater counters from the judgment log and the control trials (issue 22)."""

from django.db import migrations
from django.db.models import Count, F, Q


def fill_counters(apps, schema_editor):
    Rater = apps.get_model("annotation", "Rater")
    Judgment = apps.get_model("annotation", "Judgment")
    ControlTrial = apps.get_model("annotation", "ControlTrial")
    for rater in Rater.objects.select_related("study").iterator():
        votes = Judgment.objects.filter(rater_id=rater.pk).aggregate(
            total=Count("id"),
            chose_left=Count("id", filter=Q(tie=False, winner_id=F("image_a_id"))),
            tied=Count("id", filter=Q(tie=True)),
            timed=Count("id", filter=Q(response_ms__isnull=False)),
            fast=Count("id", filter=Q(response_ms__lt=rater.study.min_response_ms)),
            shown_native=Count("id", filter=Q(native=True)),
            known=Count("id", filter=Q(native__isnull=False)),
        )
        controls = ControlTrial.objects.filter(rater_id=rater.pk, status="voted").aggregate(
            gold=Count("id", filter=Q(kind="gold")), practice=Count("id", filter=Q(kind="training"))
        )
        Rater.objects.filter(pk=rater.pk).update(
            trials_done=votes["total"] + controls["gold"],
            practice_done=controls["practice"],
            votes_left=votes["chose_left"],
            votes_tied=votes["tied"],
            votes_timed=votes["timed"],
            votes_fast=votes["fast"],
            votes_native=votes["shown_native"],
            votes_native_known=votes["known"],
        )


class Migration(migrations.Migration):
    dependencies = [("annotation", "0011_rater_counters")]

    operations = [migrations.RunPython(fill_counters, migrations.RunPython.noop)]
