from pathlib import Path

from django.core.management.base import CommandError

from annotation.exports import mos_csv, write_pipal_labels

from ._base import StudyCommand


class Command(StudyCommand):
    help = (
        "Export MOS. csv: reference,image,distortion_type,category,subtype,level,elo,mos,judgments (to stdout or "
        "--out FILE). pipal: one <ref>.txt per reference with lines <image>,<mos> into --out DIR. Byte-identical "
        "when nothing changed."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--format", choices=["csv", "pipal"], default="csv")
        parser.add_argument("--out", type=Path, help="file (csv) or folder (pipal)")

    def handle(self, *args, slug, format, out, **options):
        study = self.study(slug)
        if format == "pipal":
            if out is None:
                raise CommandError("--format pipal writes a folder of label files: give --out DIR")
            written = write_pipal_labels(study, out)
            self.stderr.write(f"wrote {len(written)} label file(s) to {out}")
            return
        text = mos_csv(study)
        if out is None:
            self.stdout.write(text, ending="")
        else:
            out.write_text(text, encoding="utf-8", newline="")
            self.stderr.write(f"wrote {text.count(chr(10)) - 1} row(s) to {out}")
