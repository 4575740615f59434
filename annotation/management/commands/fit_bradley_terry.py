from tqdm import tqdm

from annotation.analysis import bt_fit
from annotation.commands import StudyCommand


class Command(StudyCommand):
    help = (
        "Fit Bradley–Terry scores on the Elo scale (PIPAL Eq. 1 as a likelihood) to the study's judgments, without "
        "excluded raters, with bootstrap 95%% CIs; store them (export_mos's mos_bt, ci_low, ci_high) and report "
        "whether the study has reached its precision goal (target_ci_width, target_kendall)."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument(
            "--rounds", type=int, help="bootstrap rounds, at least 100 (default: the study's bt_rounds)"
        )
        parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap resampling (0)")

    def handle(self, *args, slug, rounds, seed, **options):
        study = self.study(slug)
        total = rounds if rounds is not None else study.bt_rounds
        with tqdm(total=total, desc="bootstrap", unit="round", disable=None) as bar:
            fit = bt_fit.study_fit_bradley_terry(study=study, rounds=rounds, seed=seed, progress=bar.update)
        self.stdout.write(describe_fit(fit))


def describe_fit(fit) -> str:
    verdict = "DONE" if fit.done else "not done yet"
    return (
        f"Bradley–Terry ({fit.get_scope_display().lower()}) over {fit.judgments} judgment(s), {fit.images} image(s), "
        f"{fit.rounds} bootstrap rounds, {fit.seconds:.1f} s\n"
        f"95% CI width: median {fit.median_ci:.1f}, widest {fit.widest_ci:.1f} Elo points; "
        f"{fit.images_too_wide} image(s) wider than {fit.target_ci_width:g} (or not judged)\n"
        f"ranking stability: Kendall distance between bootstrap replicates {fit.kendall:.4f} "
        f"(target {fit.target_kendall:g})\n"
        f"precision goal: {verdict}"
    )
