import argparse
from pathlib import Path

from django.core.management.base import DjangoHelpFormatter
from tqdm import tqdm

from annotation.commands import StudyCommand
from annotation.imports import label_files, labels

EPILOG = """\
formats:
  pipal    SOURCE is the dataset folder: references in Ref/ (or Train_Ref/, Reference_train/), distorted
           images in Dis/ (or Train_Dis/, Dist_Imgs/, Distortion/, Distortion_1/ ...; searched recursively),
           labels in Train_Label/<ref>.txt (or MOS_Scores_train/) with lines <image>,<elo mos>, and optionally
           distortion_types.csv (id,name,category,subtype). --labels FILE reads pyiqa's flattened CSV
           hq_name,dist_name,elo_score instead (other columns, e.g. official_split, are read past). pyiqa's
           datasets/ folder works as it is: PIPAL/Train_Ref/, PIPAL/Dist_Imgs/ and the labels in
           meta_info/meta_info_PIPALDataset.csv. Every label must name an image in the distorted folders;
           an image without a label is an error unless --allow-unlabelled (then it is left out).
  mos-csv  SOURCE is a CSV reference,image,mos[,std][,distortion_type] (TID2013, KADID-10k, LIVE ...); files
           are looked up in --images DIR (default: the CSV's folder), in its Ref/ and Dis/ when it has both.
           The direction is required; MOS is stored higher = better: a --lower-is-better score x becomes
           LOW + HIGH - x with --range, -x without (the value as written is kept). With a distortion_type
           column, a distortion_types.csv beside the CSV names the types.
  2afc     SOURCE is a BAPPS folder with ref/, p0/, p1/, judge/ (judge/*.npy: the share preferring p1), or a
           folder of such subsets (e.g. 2afc/val: one distortion type per subset), or a CSV
           reference,p0,p1,judge[,votes]. Each triplet is stored as judge x votes judgments for p1 and the rest
           for p0, replayed through the Elo engine (--votes: 2 for BAPPS train, 5 for val; default 1).

The study is created when SLUG is new (--name), or must be empty. pipal and mos-csv studies take their MOS
from the labels: they take no votes, and recompute_mos/replay_judgments refuse them. All or nothing: any
problem refuses the whole import, listing every problem with its file and line; nothing is stored.
Re-running an import into the same study is refused (it changes nothing).

examples:
  manage.py import_labels pipal /data/PIPAL --format pipal
  manage.py import_labels pipal-pyiqa ~/datasets --format pipal
  manage.py import_labels tid2013 /data/tid2013/mos.csv --format mos-csv --images /data/tid2013 \\
      --higher-is-better --range 0 9
  manage.py import_labels bapps-val /data/dataset/2afc/val --format 2afc --votes 5
"""


class HelpFormatter(DjangoHelpFormatter, argparse.RawDescriptionHelpFormatter):
    pass


class Command(StudyCommand):
    help = (
        "Import a labelled dataset as a study: PIPAL label files (pipal), a MOS CSV (mos-csv) or BAPPS 2AFC "
        "triplets (2afc). The images are checked as import_images checks them."
    )

    def create_parser(self, prog_name, subcommand, **kwargs):
        return super().create_parser(prog_name, subcommand, formatter_class=HelpFormatter, epilog=EPILOG, **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("slug", help="the study's slug (a new study is created, or an empty one filled)")
        parser.add_argument("source", type=Path, help="the dataset folder, or the CSV file (see formats below)")
        parser.add_argument("--format", required=True, choices=label_files.FORMATS, help="the label format")
        parser.add_argument("--name", default="", help="name of a new study (default: the slug)")
        parser.add_argument("--labels", type=Path, help="pipal: a label folder or pyiqa CSV instead of Train_Label/")
        parser.add_argument("--allow-unlabelled", action="store_true", help="pipal: leave images without a label out")
        parser.add_argument("--images", type=Path, help="mos-csv, 2afc CSV: folder of the image files")
        direction = parser.add_mutually_exclusive_group()
        direction.add_argument(
            "--higher-is-better", dest="higher_is_better", action="store_true", default=None, help="mos-csv: a MOS"
        )
        direction.add_argument(
            "--lower-is-better", dest="higher_is_better", action="store_false", help="mos-csv: a DMOS"
        )
        parser.add_argument(
            "--range", nargs=2, type=float, metavar=("LOW", "HIGH"), help="mos-csv: every score must lie in it"
        )
        parser.add_argument("--votes", type=int, help="2afc: judgments per triplet (default 1; BAPPS train 2, val 5)")

    def handle(self, *args, slug, source, format, name, **options):
        settings = label_files.LabelOptions(
            format=format,
            labels=options["labels"],
            images=options["images"],
            allow_unlabelled=options["allow_unlabelled"],
            higher_is_better=options["higher_is_better"],
            range=tuple(options["range"]) if options["range"] else None,
            votes=options["votes"],
        )
        label_files.check_options(settings)
        study = labels.study_for_labels(slug)
        self.stdout.write(f"reading {format} labels from {source} …")
        plan = labels.labels_read(source, settings)
        with tqdm(total=plan.file_count, unit="file", desc="checking images", disable=None) as bar:
            images = labels.labels_check_images(study, plan, progress=bar.update)
        with tqdm(total=plan.file_count, unit="file", desc="storing", disable=None) as bar:
            report = labels.labels_import(slug=slug, name=name, plan=plan, images=images, progress=bar.update)
        source_line = (
            f"{report.judgments} judgment(s) replayed through the Elo engine"
            if report.judgments
            else "MOS from the labels (no live Elo; the study takes no votes)"
        )
        self.stdout.write(
            f"imported {report.references} reference(s) and {report.images} image(s) into {report.study.slug}: "
            f"{source_line}"
        )
        if report.left_out:
            self.stdout.write(f"{report.left_out} image(s) without a label left out (--allow-unlabelled)")
