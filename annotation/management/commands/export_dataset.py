from pathlib import Path

from tqdm import tqdm

from annotation.analysis import dataset_export
from annotation.commands import StudyCommand


class Command(StudyCommand):
    help = (
        "Write a study as a dataset other tools read unchanged: the images under readable names (BMP where the "
        "source is lossless, else the file as it is) beside their MOS. --layout pipal: PIPAL's release "
        "(Train_Ref/<ref>.bmp, Train_Dis/<ref>_<type>_<level>.bmp, Train_Label/<ref>.txt, distortion_types.csv), "
        "which import_labels --format pipal reads back. --layout pyiqa: pyiqa's datasets/ folder for its PIPAL "
        "options (PIPAL/Train_Ref/, PIPAL/Dist_Imgs/, meta_info/meta_info_PIPALDataset.csv with "
        "hq_name,dist_name,elo_score,official_split, and meta_info/pipal_official_split.pkl), split by reference."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--layout", required=True, choices=dataset_export.LAYOUTS)
        parser.add_argument("--out", required=True, type=Path, help="a new or empty folder")
        parser.add_argument(
            "--split",
            nargs=3,
            type=float,
            default=(0.8, 0.1, 0.1),
            metavar=("TRAIN", "VAL", "TEST"),
            help="pyiqa: shares of the references per phase, summing to 1 (default 0.8 0.1 0.1)",
        )
        parser.add_argument("--seed", type=int, default=0, help="pyiqa: seed of the references' shuffle (default 0)")
        parser.add_argument(
            "--min-judgments",
            type=int,
            default=1,
            help="leave out images with fewer counted judgments (default 1: never-judged images)",
        )

    def handle(self, *args, slug, layout, out, split, seed, min_judgments, **options):
        study = self.study(slug)
        kept = study.images.filter(judgment_count__gte=min_judgments)
        total = kept.count() + kept.values("reference").distinct().count()
        with tqdm(total=total, unit="file", desc="copying", disable=None) as bar:
            export = dataset_export.study_export_dataset(
                study=study,
                out=out,
                layout=layout,
                split=tuple(split),
                seed=seed,
                min_judgments=min_judgments,
                progress=bar.update,
            )
        self.stdout.write(
            f"wrote {export.references} reference(s) and {export.images} image(s) to {export.folder} "
            f"({export.converted} converted losslessly to BMP, {export.copied} kept in their own format)"
        )
        if export.left_out:
            self.stdout.write(f"{export.left_out} image(s) with fewer than {min_judgments} judgment(s) left out")
        if export.label_file is not None:
            phases = ", ".join(f"{count} {phase}" for phase, count in export.splits.items())
            root = export.folder.resolve()
            self.stdout.write(
                f"split by reference: {phases}. pyiqa reads it with its pipal options and "
                f"dataroot_target: {root / 'PIPAL' / 'Dist_Imgs'}, dataroot_ref: {root / 'PIPAL' / 'Train_Ref'}, "
                f"meta_info_file: {export.label_file.resolve()}, split_index: "
                f"{dataset_export.PYIQA_SPLIT_INDEX}"
            )
