"""Fill the new rater counters from the judgment log and the control trials (issue 22)."""

from django.db import migrations


def fill_counters(apps, schema_editor):
    from annotation.analysis.rater_counts import recount

    Study = apps.get_model("annotation", "Study")
    Rater = apps.get_model("annotation", "Rater")
    for study in Study.objects.all():
        recount(
            rater_model=Rater,
            judgment_model=apps.get_model("annotation", "Judgment"),
            control_model=apps.get_model("annotation", "ControlTrial"),
            rater_ids=list(Rater.objects.filter(study=study).values_list("pk", flat=True)),
            fast_below_ms=study.min_response_ms,
            clear_gap=study.agreement_min_gap,
        )


class Migration(migrations.Migration):
    dependencies = [("annotation", "0011_rater_counters_and_open_indexes")]

    operations = [migrations.RunPython(fill_counters, migrations.RunPython.noop)]
