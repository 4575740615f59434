from django.core.management.base import CommandError
from tqdm import tqdm

from annotation import selectors
from annotation.simulation import DEFAULT_SPREAD, GOOD, RaterMix, simulate_study

from ._base import StudyCommand


class Command(StudyCommand):
    help = (
        "Synthetic raters who prefer an image with PIPAL Eq. 1's probability of hidden true scores vote through the "
        "real scheduler and vote service until the study holds N x (images) judgments; prints SRCC and KRCC "
        "between the MOS and the truth. Use a study of its own: real raters' judgments are never mixed in."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument(
            "--judgments-per-image", type=float, required=True, help="N: total judgments = N x images (PIPAL: ~39)"
        )
        parser.add_argument("--seed", type=int, default=0, help="fixes true scores, pairs and choices")
        parser.add_argument(
            "--spread", type=float, default=DEFAULT_SPREAD, help="SD of the true scores on the Elo scale (150)"
        )
        parser.add_argument(
            "--truth-metric",
            help="hidden scores follow this metric (scored beforehand with compute_scores) instead of random "
            "ones, so the judgments carry a known signal, e.g. ms_ssim",
        )
        parser.add_argument("--random-raters", type=float, default=0.0, help="share of raters who click at random")
        parser.add_argument("--one-side-raters", type=float, default=0.0, help="share who always pick the left image")

    def handle(
        self, *args, slug, judgments_per_image, seed, spread, random_raters, one_side_raters, truth_metric, **options
    ):
        if judgments_per_image <= 0:
            raise CommandError("--judgments-per-image must be positive")
        if min(random_raters, one_side_raters) < 0 or random_raters + one_side_raters > 1:
            raise CommandError("--random-raters and --one-side-raters are shares between 0 and 1 (sum at most 1)")
        study = self.study(slug)
        with tqdm(desc="judgments", unit="vote", disable=None) as bar:
            report = simulate_study(
                study=study,
                judgments_per_image=judgments_per_image,
                seed=seed,
                spread=spread,
                mix=RaterMix(random=random_raters, one_side=one_side_raters),
                progress=bar.update,
                truth_metric=truth_metric,
            )
        a = report.agreement
        self.stdout.write(
            f"{report.judgments_added} judgment(s) added; {report.judgments_total} in all over {report.images} "
            f"image(s) ({report.judgments_total / report.images:.1f} per image) from {report.raters} synthetic rater(s)"
        )
        self.stdout.write(f"SRCC {a.srcc:.4f}  KRCC {a.krcc:.4f}  (pooled over all images)")
        self.stdout.write(
            f"SRCC {a.srcc_per_group:.4f}  KRCC {a.krcc_per_group:.4f}  (mean over {a.groups} references; "
            "MOS is identified only within a reference)"
        )
        for code, agreement in report.by_type.items():
            self.stdout.write(f"  type {code}: SRCC {agreement.srcc:.4f}  KRCC {agreement.krcc:.4f}")
        if random_raters or one_side_raters:
            self._report_flags(study, report)

    def _report_flags(self, study, report):
        qualities = selectors.rater_qualities(study)
        for label, wanted in (("bad", False), ("good", True)):
            ids = [r for r, b in report.behaviours.items() if (b == GOOD) == wanted and r in qualities]
            assessed = [r for r in ids if qualities[r].trials >= study.flag_min_trials or qualities[r].gold_failed]
            flagged = sum(qualities[r].flagged for r in assessed)
            self.stdout.write(f"{label} raters: {flagged} of {len(assessed)} with enough trials flagged")
