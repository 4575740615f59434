import json
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from annotation.analysis import elo
from annotation.commands import StudyCommand
from annotation.studies import STUDY_OPTIONS, study_create


class Command(StudyCommand):
    help = (
        "Create a study: PIPAL's pairwise protocol with its Elo settings (M=400, K=16, start 1400) unless told "
        "otherwise, or another protocol (--protocol pairwise-nr, acr, dcr, rank-k)."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--name", default="", help="display name (default: the slug)")
        parser.add_argument("--elo-m", type=float, default=elo.DEFAULT_M, help="Elo scale M (default 400)")
        parser.add_argument("--elo-k", type=float, default=elo.DEFAULT_K, help="Elo step K (default 16)")
        parser.add_argument("--elo-initial", type=float, default=elo.DEFAULT_INITIAL, help="start rating (1400)")
        parser.add_argument(
            "--mos-window", type=int, default=elo.DEFAULT_MOS_WINDOW, help="MOS = mean of the last N Elo values (10)"
        )
        parser.add_argument(
            "--protocol",
            choices=["pairwise-fr", "pairwise-nr", "acr", "dcr", "rank-k"],
            help="what raters do (default pairwise-fr: PIPAL's reference beside two images; see the README)",
        )
        parser.add_argument(
            "--scale",
            help="acr/dcr: a built-in scale (acr-5, dcr-5, real-fake-4; default acr-5 / dcr-5) or a JSON file of one",
        )
        parser.add_argument(
            "--continuous", action="store_true", default=None, help="acr/dcr: a slider between the scale's ends"
        )
        parser.add_argument("--rank-k", type=int, help="rank-k: images ranked per trial, 2-6 (default 4)")
        parser.add_argument(
            "--zoom-patch", type=int, help="pairwise-nr: side in pixels of a patch shown enlarged (default 0: none)"
        )
        parser.add_argument("--trials-per-rater", type=int, help="rated trials per rater (default 60)")
        parser.add_argument("--training-trials", type=int, help="easy pairs with feedback first (default 3)")
        parser.add_argument("--gold-every", type=int, help="one gold pair per N trials, 0 for none (default 20)")
        parser.add_argument("--min-response-ms", type=int, help="faster votes count as too fast (default 500)")
        parser.add_argument("--min-vote-interval-ms", type=int, help="per-rater vote rate limit (default 300)")
        parser.add_argument(
            "--completion-code", help="one code for every rater, e.g. Prolific's (default: a unique code per rater)"
        )
        parser.add_argument(
            "--completion-url",
            help="send finished raters here, {code} replaced: https://app.prolific.com/submissions/complete?cc={code}",
        )
        parser.add_argument("--screen-out-code", help="the code raters excluded by a check get (Prolific screen-out)")
        parser.add_argument("--screen-out-url", help="send raters excluded by a check here ({code} replaced)")
        parser.add_argument(
            "--no-resume",
            dest="allow_resume",
            action="store_false",
            default=None,
            help="one session per id: joining again with the same id is refused (default: it continues)",
        )
        parser.add_argument(
            "--allow-ties",
            action="store_true",
            default=None,
            help="offer 'can't tell' (S = 0.5); PIPAL is forced choice",
        )
        parser.add_argument(
            "--narrow-layout",
            action="store_true",
            default=None,
            help="let small windows and phones show the reference above the pair (default: ask for a larger window)",
        )
        parser.add_argument(
            "--screen-calibration",
            action="store_true",
            default=None,
            help="measure each rater's pixels per degree (card and blind spot) before the first trial",
        )
        parser.add_argument(
            "--max-non-native-share",
            type=float,
            help="flag raters with more than this share of votes on images not at native size (default 0)",
        )
        parser.add_argument(
            "--min-px-per-degree", type=float, help="with calibration: flag raters below this many pixels per degree"
        )
        parser.add_argument(
            "--pair-policy",
            choices=["balanced", "active"],
            help="balanced (default, PIPAL-like) or active: partners drawn by expected information gain",
        )
        parser.add_argument(
            "--bt-scope", choices=["reference", "global"], help="Bradley–Terry fit per reference (default) or global"
        )
        parser.add_argument("--bt-rounds", type=int, help="bootstrap rounds of the Bradley–Terry CIs (>= 100; 100)")
        parser.add_argument(
            "--target-ci-width", type=float, help="precision goal: every 95%% CI at most this wide, Elo points (100)"
        )
        parser.add_argument(
            "--target-kendall", type=float, help="precision goal: Kendall distance between bootstrap replicates (0.05)"
        )

    def handle(self, *args, slug, name, elo_m, elo_k, elo_initial, mos_window, **options):
        chosen = {key: options[key] for key in STUDY_OPTIONS if options.get(key) is not None}
        if options.get("continuous"):
            chosen["continuous"] = True
        if chosen.get("scale", "").endswith(".json"):
            try:
                chosen["scale"] = json.loads(Path(chosen["scale"]).read_text())
            except (OSError, ValueError) as error:
                raise CommandError(f"--scale {chosen['scale']}: {error}") from None
        try:
            study = study_create(
                slug=slug,
                name=name,
                elo_m=elo_m,
                elo_k=elo_k,
                elo_initial=elo_initial,
                mos_window=mos_window,
                **chosen,
            )
        except (ValueError, ValidationError) as error:
            raise CommandError(str(error)) from None
        self.stdout.write(
            f"created study {study.slug} (M={study.elo_m:g}, K={study.elo_k:g}, "
            f"start={study.elo_initial:g}, MOS window={study.mos_window})"
            if study.is_pairwise
            else f"created {study.protocol} study {study.slug}"
            + (f" on the scale {study.scale['name']}" if study.scale else f" ranking {study.rank_k} at a time")
        )
