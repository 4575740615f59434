from pathlib import Path

from django.core.management.base import CommandError

from annotation.analysis import bt_fit
from annotation.analysis.exports import mos_csv, write_pipal_labels
from annotation.commands import StudyCommand


class Command(StudyCommand):
    help = (
        "Export MOS. csv: reference,image,distortion_type,category,subtype,level,elo,mos,judgments,mos_bt,ci_low,"
        "ci_high (to stdout or --out FILE); mos_bt and its bootstrap 95%% CI come from the latest Bradley–Terry "
        "fit, refitted first when judgments changed since. pipal: one <ref>.txt per reference with lines "
        "<image>,<mos> (Elo) into --out DIR. Byte-identical when nothing changed."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--format", choices=["csv", "pipal"], default="csv")
        parser.add_argument("--out", type=Path, help="file (csv) or folder (pipal)")
        parser.add_argument(
            "--no-refit", action="store_true", help="csv: write the stored Bradley–Terry fit even when it is stale"
        )

    def handle(self, *args, slug, format, out, no_refit, **options):
        study = self.study(slug)
        if format == "pipal":
            if out is None:
                raise CommandError("--format pipal writes a folder of label files: give --out DIR")
            written = write_pipal_labels(study, out)
            self.stderr.write(f"wrote {len(written)} label file(s) to {out}")
            return
        if not no_refit and bt_fit.counted_judgments(study).exists() and not bt_fit.fit_is_current(study):
            self.stderr.write("fitting Bradley–Terry first (judgments changed since the last fit)")
            bt_fit.study_fit_bradley_terry(study=study)
        text = mos_csv(study)
        if out is None:
            self.stdout.write(text, ending="")
        else:
            out.write_text(text, encoding="utf-8", newline="")
            self.stderr.write(f"wrote {text.count(chr(10)) - 1} row(s) to {out}")
