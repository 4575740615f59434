import json
from pathlib import Path

from django.core.management.base import CommandError

from annotation.analysis import bt_fit
from annotation.analysis.exports import (
    CSV_COLUMNS,
    BtFit,
    bt_fit_state,
    mos_csv,
    mos_export_metadata,
    protocol_csv,
    protocol_export_metadata,
    rater_screening_csv,
    write_pipal_labels,
)
from annotation.analysis.protocol_results import IMAGE_COLUMNS, RANKING_COLUMNS, RATING_COLUMNS
from annotation.commands import StudyCommand


class Command(StudyCommand):
    help = (
        f"Export MOS. csv: {','.join(CSV_COLUMNS)} (to stdout or --out FILE, missing folders created). mos_sd: "
        "sample SD of the last mos_window Elo values; raters: distinct raters among the counted judgments; "
        "mos_bt and its bootstrap 95%% CI come from the latest Bradley–Terry fit, refitted first when judgments "
        "changed since (--no-refit keeps it, and bt_fit says current, stale or none per row). With --out FILE a "
        "sidecar FILE.json holds the study's Elo and Bradley–Terry settings, the counted log's size and the "
        "fit's time. pipal: one <ref>.txt per reference with lines <image>,<mos> (Elo) into --out DIR. The CSV "
        "is byte-identical when nothing changed. "
        f"acr and dcr studies: csv {','.join((*IMAGE_COLUMNS, *RATING_COLUMNS))} (mean score, its SD, count and "
        "Student-t 95% CI; the subject model's quality and CI); rank-k studies: csv "
        f"{','.join((*IMAGE_COLUMNS, *RANKING_COLUMNS))} (mean rank, 1 best; Plackett–Luce score and bootstrap "
        "95% CI; mean normalised Borda score); their sidecar holds the protocol, scale and log counts; pipal "
        "writes the stored MOS (mean score, Borda). --raters FILE (acr, dcr, rank-k) also writes the raters' "
        "screening: BT.500, correlation, subject-model bias and inconsistency (acr, dcr) or agreement with the "
        "Plackett–Luce order (rank-k)."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--format", choices=["csv", "pipal"], default="csv")
        parser.add_argument("--out", type=Path, help="file (csv, with FILE.json beside it) or folder (pipal)")
        parser.add_argument(
            "--no-refit",
            action="store_true",
            help="csv: write the stored Bradley–Terry fit even when it is stale (its rows then say bt_fit=stale)",
        )
        parser.add_argument(
            "--no-subject-model",
            dest="subject_model",
            action="store_false",
            help="acr, dcr: leave the mle_* columns blank (sureal's fit takes minutes at a few thousand images "
            "and about an hour at 10k)",
        )
        parser.add_argument(
            "--raters",
            type=Path,
            metavar="FILE",
            help="acr, dcr, rank-k: also write the raters' screening table to FILE (CSV, one row per counted rater)",
        )

    def handle(self, *args, slug, format, out, no_refit, raters, subject_model, **options):
        study = self.study(slug)
        if raters is not None:
            if study.is_pairwise:
                raise CommandError(f"--raters: study {slug} is pairwise; rater screening is for acr, dcr and rank-k")
            self._write(raters, rater_screening_csv(study))
            self.stderr.write(f"wrote the raters' screening to {raters}")
        if format == "pipal":
            if out is None:
                raise CommandError("--format pipal writes a folder of label files: give --out DIR")
            written = write_pipal_labels(study, out)
            self.stderr.write(f"wrote {len(written)} label file(s) to {out}")
            return
        if not study.is_pairwise:
            self._export_protocol(study, out, subject_model)
            return
        if not no_refit and bt_fit.counted_judgments(study).exists() and bt_fit_state(study) != BtFit.CURRENT:
            self.stderr.write("fitting Bradley–Terry first (no fit yet, or judgments changed since the last one)")
            bt_fit.study_fit_bradley_terry(study=study)
        text = mos_csv(study)
        if out is None:
            self.stdout.write(text, ending="")
            return
        if out.is_dir():
            raise CommandError(f"--out {out} is a folder: give a file name for the CSV, e.g. {out / 'mos.csv'}")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8", newline="")
        sidecar = out.with_name(f"{out.name}.json")
        sidecar.write_text(json.dumps(mos_export_metadata(study), indent=2) + "\n", encoding="utf-8")
        self.stderr.write(f"wrote {text.count(chr(10)) - 1} row(s) to {out}, its settings to {sidecar}")

    def _write(self, path: Path, text: str) -> None:
        if path.is_dir():
            raise CommandError(f"{path} is a folder: give a file name for the CSV")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="")

    def _export_protocol(self, study, out: Path | None, subject_model: bool = True) -> None:
        """acr, dcr, rank-k: the protocol's per-image results, and with --out its sidecar."""
        text = protocol_csv(study, subject_model=subject_model)
        if out is None:
            self.stdout.write(text, ending="")
            return
        self._write(out, text)
        sidecar = out.with_name(f"{out.name}.json")
        sidecar.write_text(json.dumps(protocol_export_metadata(study), indent=2) + "\n", encoding="utf-8")
        self.stderr.write(f"wrote {text.count(chr(10)) - 1} row(s) to {out}, its settings to {sidecar}")
