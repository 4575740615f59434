"""PIPAL Table 2's denoising sub-types: the classical denoisers (NLM, BM3D, JPEG-artefact
removal by filtering), filed so far under their own names, become "model_based_denoising"
beside "mean_filter" and the new "deep_denoising" (sr_models.distortions.subtypes)."""

from django.db import migrations, models

FORMER_MODEL_BASED_DENOISING = ("nlm_denoising", "bm3d_denoising", "jpeg_artifact_removal")  # frozen here


def to_pipal_subtypes(apps, schema_editor):
    DistortionType = apps.get_model("annotation", "DistortionType")
    DistortionType.objects.filter(category="denoising", subtype__in=FORMER_MODEL_BASED_DENOISING).update(
        subtype="model_based_denoising"
    )


class Migration(migrations.Migration):
    dependencies = [("annotation", "0012_rater_counters_from_the_log")]

    operations = [
        migrations.AlterField(
            model_name="distortiontype",
            name="subtype",
            field=models.CharField(
                blank=True,
                help_text=(
                    "PIPAL Table 2's sub-type: for SR interpolation, traditional_sr (example-based), "
                    "kernel_mismatch_sr, psnr_sr or gan_sr; for denoising mean_filter, model_based_denoising or "
                    "deep_denoising"
                ),
                max_length=64,
            ),
        ),
        # The former names are not kept anywhere, so there is nothing to go back to: a no-op reverse.
        migrations.RunPython(to_pipal_subtypes, migrations.RunPython.noop),
    ]
