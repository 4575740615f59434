from django.core.management.base import CommandError
from tqdm import tqdm

from annotation import selectors
from annotation.commands import StudyCommand
from annotation.models import DistortedImage
from dashboard.protocol_simulation import simulate_protocol_study
from dashboard.simulation import (
    DEFAULT_SPREAD,
    GOOD,
    POLICIES,
    RaterMix,
    apply_qc,
    compare_policies,
    simulate_study,
)

DEFAULT_CHECKPOINTS = (5, 10, 15, 20, 25, 30, 39)


class Command(StudyCommand):
    help = (
        "Synthetic raters who prefer an image with PIPAL Eq. 1's probability of hidden true scores vote through the "
        "real scheduler and vote service until the study holds N x (images) judgments; prints SRCC and KRCC "
        "between the truth and both the Elo MOS and a Bradley–Terry fit of the same judgments. Good raters can be "
        "noisy or side-biased (--rater-noise, --rater-bias) and bad ones mixed in (--random-raters, "
        "--one-side-raters); --apply-qc then excludes every rater quality control flags and reports what that "
        "recovers. --compare-policies leaves the study untouched: it simulates balanced and active pairing on "
        "scratch copies (same images and files, deleted afterwards) at each of --checkpoints and reports how many "
        "judgments active pairing + Bradley–Terry needs for the SRCC random pairing + Elo reaches at N. "
        "Use a study of its own: real raters' judgments are never mixed in. "
        "On an acr, dcr or rank-k study, N is ratings (or appearances in rankings) per image; synthetic raters "
        "of the subject model (a bias and an inconsistency each: --rater-bias, --rater-noise in scale units) "
        "answer through the real scheduler, practice and checks included, and the report compares the truth "
        "with the plain MOS and the subject model (acr/dcr) or Plackett–Luce (rank-k), and the planted biases "
        "with the recovered ones."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument(
            "--judgments-per-image",
            type=float,
            required=True,
            help="N: total judgments = N x images (PIPAL: ~39); with --compare-policies the last checkpoint",
        )
        parser.add_argument("--seed", type=int, default=0, help="fixes true scores, raters, pairs and choices")
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
        parser.add_argument(
            "--rater-noise",
            type=float,
            default=0.0,
            help="perception noise of good raters, Elo points: each rater sees every image's true score plus "
            "fresh Gaussian noise of an SD of their own, this x exp(N(0, 0.5)) (0: perfect raters)",
        )
        parser.add_argument(
            "--rater-bias",
            type=float,
            default=0.0,
            help="side bias of good raters, Elo points: each rater adds b ~ N(0, this) to the left image's "
            "perceived score (0: none)",
        )
        parser.add_argument(
            "--apply-qc",
            action="store_true",
            help="after simulating, exclude every rater quality control flags (as an admin would), rebuild the "
            "Elo MOS and report Elo and Bradley–Terry agreement before and after and who was excluded",
        )
        parser.add_argument(
            "--compare-policies",
            action="store_true",
            help="compare balanced and active pairing on scratch copies of the study (its judgments untouched, "
            "the copies deleted afterwards): Elo and Bradley–Terry SRCC at each checkpoint, and the judgments "
            "each needs for the SRCC balanced pairing + Elo reaches at N",
        )
        parser.add_argument(
            "--checkpoints",
            help="with --compare-policies: judgments per image to measure at, comma-separated, at most N "
            "(N is added); default 5,10,15,20,25,30,39 up to N",
        )

    def handle(
        self,
        *args,
        slug,
        judgments_per_image,
        seed,
        spread,
        random_raters,
        one_side_raters,
        truth_metric,
        rater_noise,
        rater_bias,
        apply_qc,
        compare_policies,
        checkpoints,
        **options,
    ):
        if judgments_per_image <= 0:
            raise CommandError("--judgments-per-image must be positive")
        if min(random_raters, one_side_raters) < 0 or random_raters + one_side_raters > 1:
            raise CommandError("--random-raters and --one-side-raters are shares between 0 and 1 (sum at most 1)")
        if min(rater_noise, rater_bias) < 0:
            raise CommandError("--rater-noise and --rater-bias are SDs in Elo points: they cannot be negative")
        if checkpoints is not None and not compare_policies:
            raise CommandError("--checkpoints applies to --compare-policies only")
        study = self.study(slug)
        if not study.is_pairwise:
            self._simulate_protocol(study, judgments_per_image, seed, rater_bias, rater_noise, random_raters)
            return
        mix = RaterMix(random=random_raters, one_side=one_side_raters, noise=rater_noise, bias=rater_bias)
        if compare_policies:
            if truth_metric:
                raise CommandError(
                    "--compare-policies cannot use --truth-metric: the metric's scores belong to the study's own "
                    "images, not to the scratch copies; compare with random hidden scores (--seed)"
                )
            if apply_qc:
                raise CommandError("--apply-qc and --compare-policies do not combine: run them separately")
            self._compare(
                study, judgments_per_image, self._checkpoints(checkpoints, judgments_per_image), seed, spread, mix
            )
            return
        with tqdm(desc="judgments", unit="vote", disable=None) as bar:
            report = simulate_study(
                study=study,
                judgments_per_image=judgments_per_image,
                seed=seed,
                spread=spread,
                mix=mix,
                progress=bar.update,
                truth_metric=truth_metric,
            )
        self.stdout.write(
            f"{report.judgments_added} judgment(s) added; {report.judgments_total} in all over {report.images} "
            f"image(s) ({report.judgments_total / report.images:.1f} per image) from {report.raters} synthetic rater(s)"
        )
        self._agreement("Elo MOS:", report.agreement, "MOS is identified only within a reference")
        self._agreement("Bradley–Terry:", report.agreement_bt, "a plain fit of the counted judgments")
        for code, agreement in report.by_type.items():
            self.stdout.write(f"  type {code} (Elo MOS): SRCC {agreement.srcc:.4f}  KRCC {agreement.krcc:.4f}")
        if random_raters or one_side_raters:
            self._report_flags(study, report)
        if apply_qc:
            self._apply_qc(study, report)

    def _simulate_protocol(self, study, per_image, seed, bias, noise, random_share):
        with tqdm(desc="ratings" if study.rating_scale else "rankings", unit="trial", disable=None) as bar:
            report = simulate_protocol_study(
                study=study,
                per_image=per_image,
                seed=seed,
                bias=bias if bias else 0.5,
                inconsistency=noise if noise else 0.6,
                random_share=random_share,
                progress=bar.update,
            )
        what = "rating(s)" if study.rating_scale else "ranking(s)"
        self.stdout.write(
            f"{report.entries_added} {what} added over {report.images} image(s) from {report.raters} synthetic "
            f"rater(s); {report.excluded} screened out by the hidden checks"
        )
        plain = "plain MOS" if study.rating_scale else "mean Borda score"
        self._agreement(f"{plain}:", report.mos, "against the hidden truth")
        if report.model is not None:
            model = "subject model (sureal MLE)" if study.rating_scale else "Plackett–Luce (choix)"
            self._agreement(f"{model}:", report.model, "against the hidden truth")
        if report.bias_error is not None:
            self.stdout.write(
                f"rater biases recovered with a mean absolute error of {report.bias_error:.3f} scale units"
            )

    def _agreement(self, label, a, note):
        pad = " " * len(label)
        self.stdout.write(f"{label} SRCC {a.srcc:.4f}  KRCC {a.krcc:.4f}  (pooled over all images)")
        self.stdout.write(
            f"{pad} SRCC {a.srcc_per_group:.4f}  KRCC {a.krcc_per_group:.4f}  (mean over {a.groups} references; {note})"
        )

    def _report_flags(self, study, report):
        qualities = selectors.rater_qualities(study)
        for label, wanted in (("bad", False), ("good", True)):
            ids = [r for r, b in report.behaviours.items() if (b == GOOD) == wanted and r in qualities]
            assessed = [r for r in ids if qualities[r].trials >= study.flag_min_trials or qualities[r].gold_failed]
            flagged = sum(qualities[r].flagged for r in assessed)
            self.stdout.write(f"{label} raters: {flagged} of {len(assessed)} with enough trials flagged")

    def _apply_qc(self, study, report):
        qc = apply_qc(study=study, report=report)
        self.stdout.write(
            f"QC: excluded {qc.flagged} flagged rater(s): {qc.excluded_bad} of {qc.bad_raters} bad, "
            f"{qc.excluded_good} of {qc.good_raters} good"
            + (f", {qc.excluded_unknown} of an earlier run" if qc.excluded_unknown else "")
            + f" (before QC a failed gold pair had excluded {qc.already_excluded_bad} bad, "
            f"{qc.already_excluded_good} good)"
        )
        for label, before, after in (
            ("Elo MOS", qc.elo_before, qc.elo_after),
            ("Bradley–Terry", qc.bt_before, qc.bt_after),
        ):
            self.stdout.write(
                f"QC {label}: SRCC {before.srcc:.4f} -> {after.srcc:.4f} (pooled), "
                f"{before.srcc_per_group:.4f} -> {after.srcc_per_group:.4f} (mean per reference); "
                f"KRCC {before.krcc_per_group:.4f} -> {after.krcc_per_group:.4f} (mean per reference)"
            )

    def _checkpoints(self, text, n):
        if text is None:
            values = [c for c in DEFAULT_CHECKPOINTS if c < n]
        else:
            try:
                values = [float(part) for part in text.split(",") if part.strip()]
            except ValueError:
                raise CommandError(f"--checkpoints takes comma-separated numbers, got {text!r}") from None
            if not values or min(values) <= 0 or max(values) > n:
                raise CommandError(f"--checkpoints must be positive numbers of judgments per image, at most N={n:g}")
        return sorted({*values, n})

    def _compare(self, study, n, checkpoints, seed, spread, mix):
        images = DistortedImage.objects.filter(study=study).count()
        total = len(POLICIES) * round(n * images)
        with tqdm(desc="judgments", unit="vote", total=total, disable=None) as bar:
            result = compare_policies(
                study=study, checkpoints=checkpoints, seed=seed, spread=spread, mix=mix, progress=bar.update
            )
        self.stdout.write(
            f"Pair policies on scratch copies of {result.study} ({result.images} image(s), {result.references} "
            f"reference(s); seed {result.seed}): SRCC against the same hidden truth"
        )
        header = (
            f"{'N':>6}  {'policy':<9} {'judgments':>9}  {'Elo SRCC':>8}  {'BT SRCC':>8}  {'Elo/ref':>8}  {'BT/ref':>8}"
        )
        self.stdout.write(header)
        for point in result.points:
            self.stdout.write(
                f"{point.judgments_per_image:>6g}  {point.policy:<9} {point.judgments:>9}  {point.elo.srcc:>8.4f}  "
                f"{point.bt.srcc:>8.4f}  {point.elo.srcc_per_group:>8.4f}  {point.bt.srcc_per_group:>8.4f}"
            )
        self.stdout.write("(Elo/ref, BT/ref: mean SRCC within references, where scores are identified)")
        for line in result.headlines():
            self.stdout.write(line)
