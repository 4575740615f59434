from annotation.commands import StudyCommand


class Command(StudyCommand):
    help = (
        "Make ahead of time what raters are shown: every image's display copy (its pixels as PNG under a keyed "
        "name), the practice pictures and a few gold decoys per reference. import_images, generate_distortions "
        "and seed_demo do it themselves; run it for a study made before, or after adding images in the admin."
    )

    def handle(self, *args, slug, **options):
        study = self.study(slug)
        self.prepare_stimuli(study)
        self.stdout.write(f"stimuli of {study.slug} ready")
