from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("annotation", "0009_rater_codes")]

    operations = [
        migrations.AddConstraint(
            model_name='rater',
            constraint=models.UniqueConstraint(condition=models.Q(('completion_code', ''), _negated=True), fields=('study', 'completion_code'), name='rater_unique_completion_code'),
        ),
    ]
