import re
from pathlib import Path

from django.core.management.base import CommandError
from django.utils import timezone

from iqa.learned.errors import TrainingError
from iqa.sr_gan import recipes, trainer
from iqa.training_command import StudyTrainingCommand
from sr_models import evaluation, runtime


def parse_ranker(text: str) -> tuple[str, float]:
    """NAME or NAME:WEIGHT (weight 1 when not given)."""
    name, _, weight = text.partition(":")
    try:
        value = float(weight) if weight else 1.0
    except ValueError:
        raise CommandError(f"--ranker {text!r}: the weight after ':' must be a number") from None
    if not name or not value > 0:
        raise CommandError(f"--ranker {text!r}: give NAME or NAME:WEIGHT with a positive weight")
    return name, value


class Command(StudyTrainingCommand):
    help = (
        "Train a perceptual SR generator with a GAN recipe: srgan (SRResNet, VGG discriminator, vanilla GAN 1e-3), "
        "esrgan (RRDBNet, relativistic GAN 5e-3, L1 1e-2) or ranksrgan (SRResNet, vanilla GAN 5e-3 and the "
        "rank-content loss of one or more platform Rankers, official or trained with train_ranker). Data: a study's "
        "references (--study) or a folder of HR images (--hr-dir), split by image; MATLAB-bicubic LR. Writes the run "
        "folder PIPAL_WEIGHTS_DIR/trained/sr_gan_runs/<name>/ (manifest, resumable state, training.png) and the "
        "generator PIPAL_WEIGHTS_DIR/trained/<name>.pth, labelled as trained by the platform — never an official "
        "checkpoint. The defaults are CPU-sized (patch 64, batch 4, 200 iterations): deviations from the papers. "
        "eusr-l1: EUSR's pre-training (4PP-EUSR §4.1), L1 alone, one of the x2/x4/x8 paths drawn at random each "
        "step, LR crops of --patch/4 at every scale. 4pp-eusr: EUSR (--init trained:NAME of an eusr-l1 run, or a "
        "converted graph) against 4PP-EUSR's discriminator, three x4 outputs per input (x4, x2 twice, x8 then "
        "bicubic /2), L1 0.05, GAN 0.1 and the score (0.01) and representation (0.1) losses of two score predictors "
        "trained with train_score_predictor (--aesthetic-predictor, --subjective-predictor)."
    )

    def add_arguments(self, parser):
        # no positional slug: the data is --study or --hr-dir
        parser.add_argument("recipe", choices=sorted(recipes.RECIPES), help="the paper's recipe")
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--study", help="train on this study's references")
        source.add_argument("--hr-dir", type=Path, help="train on the HR images of this folder")
        parser.add_argument(
            "--init",
            help="initial generator: a checkpoint file, a registered checkpoint name, or trained:NAME (a generator "
            "train_sr or train_sr_gan wrote) (esrgan: esrgan_psnr_x4; ranksrgan/srgan: srresnet_x4 or a train_sr "
            "output; 4pp-eusr: trained:NAME of an eusr-l1 run, or a converted eusr_4pp_paper_x4); none: from "
            "scratch (Kaiming x0.1; EUSR: its authors' initialisation)",
        )
        parser.add_argument(
            "--ranker", action="append", default=[], metavar="NAME[:WEIGHT]",
            help="ranksrgan: a platform Ranker (ranker_niqe, ranker_ma, ranker_pi, or one train_ranker wrote); "
            "repeat for several, weighted (the journal version's multi-Ranker loss)",
        )
        for role, data in (("aesthetic", "AVA in the paper"), ("subjective", "TID2013 in the paper")):
            parser.add_argument(
                f"--{role}-predictor", default=None, metavar="NAME",
                help=f"4pp-eusr: the {role} score predictor ({data}), a platform metric train_score_predictor wrote",
            )
        parser.add_argument(
            "--feature-net", choices=trainer.FEATURE_NETS, default=None,
            help="imagenet (default): torchvision's VGG19 file, refused when missing; scratch: random VGG19 "
            "weights, recorded and printed beside every number (tests only: not the paper's perceptual loss)",
        )
        self.add_shared_options(
            parser,
            iterations={"default": None, "help": f"steps in all (CPU default {recipes.CPU_ITERATIONS})"},
            batch={"default": None, "help": f"crops per step (CPU default {recipes.CPU_BATCH}; papers 16 or 8)"},
        )
        parser.add_argument("--patch", type=int, default=None,
                            help=f"HR crop side at x4 (CPU default {recipes.CPU_PATCH}; papers 96/128/296, "
                            "4PP-EUSR 192: 48 LR pixels; eusr-l1 takes patch/4 LR pixels at every path)")
        parser.add_argument("--nf", type=int, default=None, help="generator channels (default: the paper's, 64)")
        parser.add_argument("--nb", type=int, default=None,
                            help="generator blocks (default: the paper's, 16 or 23; EUSR's shared blocks, 32)")
        parser.add_argument("--d-nf", type=int, default=None,
                            help="discriminator's first width (the paper's: 64; 4pp-eusr 32, all widths scaled)")
        parser.add_argument("--validate-every", type=int, default=None, help="validation interval in steps (50)")
        self.add_shared_options(
            parser,
            checkpoint_every={"default": None, "help": "resumable checkpoint interval in steps (50)"},
            resume={"help": "continue the run --name (same data and settings; more --iterations allowed)"},
            name="run and checkpoint name (default <recipe>_x4_<source>_<timestamp>)",
            device={"default": None, "help": "cpu or cuda (default: cuda when present); cuda uses mixed precision"},
            seed={"default": None, "help": "split, crops and initial weights (0)"},
            threads={"default": 0, "help": "CPU threads for torch (0: its default)"},
        )

    def handle(self, *args, recipe, study, hr_dir, init, ranker, aesthetic_predictor, subjective_predictor,
               feature_net, name, resume, device, threads, **options):
        self.check_threads(threads)
        weights_dir = runtime.current().weights_dir
        if study:
            source = f"study {study}"
            names, images = self.study_training_images(self.study(study))
        else:
            source = f"folder {hr_dir}"
            try:
                pairs = evaluation.read_hr_folder(hr_dir)
            except evaluation.EvaluationError as error:
                raise CommandError(str(error)) from None
            names, images = [n for n, _ in pairs], [image for _, image in pairs]
        if resume and not name:
            raise CommandError("--resume needs the --name of the run to continue")
        stem = re.sub(r"[^A-Za-z0-9._-]", "-", study or Path(hr_dir).name)
        name = name or f"{recipe}_x4_{stem}_{timezone.now().strftime('%Y%m%d-%H%M%S')}"
        self.output_name(name)
        target = trainer.checkpoint_path(weights_dir, name)
        if target.exists() and not resume:
            raise CommandError(f"{target} already exists: choose another --name")

        given = {
            "iterations": options["iterations"], "batch": options["batch"], "patch": options["patch"],
            "nf": options["nf"], "nb": options["nb"], "d_nf": options["d_nf"],
            "validate_every": options["validate_every"],
            "checkpoint_every": options["checkpoint_every"], "seed": options["seed"], "feature_net": feature_net,
            "rankers": tuple(parse_ranker(text) for text in ranker) or None,
            "aesthetic_predictor": aesthetic_predictor, "subjective_predictor": subjective_predictor,
        }
        with self.training_errors():
            if options["d_nf"] is not None and not recipes.recipe(recipe).discriminator:
                raise TrainingError(f"{recipe} has no discriminator: --d-nf is for the GAN recipes")
            if resume:
                earlier = trainer.resumed_settings(weights_dir, name)
                if earlier.get("recipe") != recipe:
                    raise TrainingError(f"--resume: {name} is a {earlier.get('recipe')} run, not {recipe}")
                settings = recipes.GanSettings(**{**earlier, **{k: v for k, v in given.items() if v is not None}})
            else:
                settings = recipes.recipe(recipe).settings(**given)
            trainer.check_settings(settings)
            try:
                from iqa import metrics

                device = metrics.check_device(device)
            except ValueError as error:
                raise TrainingError(str(error)) from None
        note = f"  [{trainer.SCRATCH_NOTE}]" if trainer.uses_scratch_features(settings) else ""
        rankers = ", ".join(f"{n} x{w:g}" for n, w in settings.rankers)
        predictors = ", ".join(f"{role} {getattr(settings, f'{role}_predictor')}"
                               for role in ("aesthetic", "subjective") if getattr(settings, f"{role}_predictor"))
        features = f"VGG19 features: {settings.feature_net}" if settings.perceptual_weight else "no VGG19 loss"
        self.stdout.write(
            f"{recipes.recipe(recipe).title}: {settings.generator} (nf {settings.nf}, nb {settings.nb}) "
            f"{'against ' + settings.discriminator if settings.discriminator else 'without a discriminator'} on "
            f"{source}; {settings.iterations} iterations, batch {settings.batch}, patch {settings.patch}, "
            f"lr {settings.lr_g:g}{'/' + format(settings.lr_d, 'g') if settings.discriminator else ''}, "
            f"seed {settings.seed}"
            f"{'; Rankers ' + rankers if rankers else ''}{'; score predictors ' + predictors if predictors else ''}"
            f"{'; multi-pass x4, x2x2, x8/2' if settings.multi_pass else ''}"
            f"{'; one of the x2/x4/x8 paths per step' if settings.multi_scale else ''}; {features}{note}"
        )

        result, wall = self.run_timed(
            lambda progress: trainer.train(
                names, images, settings, name=name, weights_dir=weights_dir, source=source, init=init,
                resume=resume, device=device, progress=progress, announce=self.announce,
            ),
            steps=settings.iterations,
            desc="train_sr_gan",
            threads=threads,
        )
        provenance = trainer.provenance(result, settings, name=name, source=source)
        provenance.update(wall_seconds=round(wall, 1), torch_threads=threads, date=timezone.now().isoformat())
        trainer.write_checkpoint(target, result, provenance)

        held_out = ", ".join(result.data.validation_names)
        self.stdout.write(f"validation on {held_out} (Y, {settings.scale}-pixel border):")
        start = next((e for e in result.history if "validation" in e and e["step"] == 0), None)
        rows = [("bicubic", result.bicubic)]
        if start is not None:  # the run's first validation, before any step (a resumed run keeps it)
            rows.append((f"{recipe} step 0", start["validation"]))
        rows.append((f"{recipe} step {settings.iterations}", result.validation))
        for label, figures in rows:
            values = ", ".join(f"{key} {value:.4g}" for key, value in figures.items())
            self.stdout.write(f"  {label:24} {values}{note}")
        for metric, reason in result.skipped.items():
            self.stdout.write(f"  {metric}: {reason}")
        self.stdout.write(
            f"{settings.iterations - result.steps_before} step(s) in {wall:.1f} s; wrote {target} "
            f"({provenance['label']}); run folder {trainer.run_folder(weights_dir, name)}{note}"
        )
