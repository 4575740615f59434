import argparse
from pathlib import Path

from django.core.management.base import DjangoHelpFormatter

from annotation.commands import StudyCommand
from annotation.imports import ratings

EPILOG = """\
formats (the study's protocol decides which; --format, when given, must agree):
  scores    acr and dcr studies. A CSV rater,image,score: one rating per row; image is the file name of one of
            the study's images, score a value of the study's scale (a category's value, or with a continuous
            scale any value between its ends). A rater rates an image at most once.
  rankings  rank-k studies. A CSV rater,order: one ranking per row; order is 2 to 6 image names of one
            reference, best first, joined by '>' (A0001_01_02.png>A0001_03_01.png>A0001_02_02.png). The
            number ranked need not be the study's k. A rater ranks a set of images at most once.

Other columns are refused. All or nothing: any problem refuses the whole file, listing every problem with
its line; nothing is stored. Imported rows have no rater account (source=import, the file's rater id kept);
a rater id already in the study with a rating of the same image (or a ranking of the same set) is refused.
The study's scores (MOS, counts, Plackett–Luce) are then recomputed from the whole log; export_mos writes
the protocol's results and --raters the raters' screening.

examples:
  manage.py import_ratings koniq-subset koniq_scores.csv
  manage.py import_ratings ranksrgan-study session2.csv --format rankings
"""


class HelpFormatter(DjangoHelpFormatter, argparse.RawDescriptionHelpFormatter):
    pass


class Command(StudyCommand):
    help = (
        "Import published per-rater ratings into an acr/dcr study (scores: rater,image,score) or a rank-k study "
        "(rankings: rater,order), for re-analysis with the study's own results and screening."
    )

    def create_parser(self, prog_name, subcommand, **kwargs):
        return super().create_parser(prog_name, subcommand, formatter_class=HelpFormatter, epilog=EPILOG, **kwargs)

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("file", type=Path, help="the CSV file (see formats below)")
        parser.add_argument(
            "--format", choices=ratings.FORMATS, help="the file's format (default: the one the study's protocol takes)"
        )

    def handle(self, *args, slug, file, format, **options):
        study = self.study(slug)
        report = ratings.ratings_import(study=study, path=file, format=format)
        self.stdout.write(
            f"imported {report.rows} {'rating' if report.format == ratings.SCORES else 'ranking'}(s) by "
            f"{report.raters} rater(s) of {report.images} image(s) into {study.slug} ({study.protocol}); "
            "scores recomputed from the log"
        )
