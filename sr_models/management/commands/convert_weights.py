import shutil
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from sr_models import convert_eusr, weights

FAMILIES = ("eusr",)  # families whose weights are published only in a foreign format


def eusr_checkpoints() -> dict[str, weights.Checkpoint]:
    return {name: c for name in weights.checkpoint_names() if (c := weights.get_checkpoint(name)).arch == "eusr"}


def default_checkpoint(graph: Path) -> str:
    """The checkpoint whose published graph has this file name (``4pp_eusr_pirm.pb`` -> ``eusr_4pp_pirm_x4``)."""
    checkpoints = eusr_checkpoints()
    for name, checkpoint in checkpoints.items():
        if Path(checkpoint.file).stem == graph.stem:
            return name
    published = ", ".join(f"{Path(c.file).stem}.pb ({name})" for name, c in sorted(checkpoints.items()))
    raise CommandError(
        f"{graph.name} is not the file name of a published 4PP-EUSR graph ({published}): "
        f"say which checkpoint it is with --name {{{','.join(sorted(checkpoints))}}}"
    )


class Command(BaseCommand):
    help = (
        "Convert weights published only in a foreign format into a PyTorch checkpoint in PIPAL_WEIGHTS_DIR. "
        "`convert_weights eusr <file.pb> [--name CHECKPOINT]`: a 4PP-EUSR TensorFlow frozen graph "
        "(needs the optional TensorFlow extra: pip install -r requirements-tf.txt); the result is loaded back "
        "strictly before it is installed under the checkpoint's file name."
    )

    def add_arguments(self, parser):
        parser.add_argument("family", help=f"architecture family: {', '.join(FAMILIES)}")
        parser.add_argument("graph", help="the published file, e.g. 4pp_eusr_pirm.pb")
        parser.add_argument(
            "--name",
            help="checkpoint to write (default: from the file name: 4pp_eusr_pirm.pb -> eusr_4pp_pirm_x4, "
            "4pp_eusr_paper_v2.pb -> eusr_4pp_paper_x4)",
        )

    def handle(self, *args, family, graph, name, **options):
        if family not in FAMILIES:
            raise CommandError(
                f"no converter for {family!r}: only {', '.join(FAMILIES)} weights are published as TensorFlow "
                "graphs; other families' PyTorch files are installed with import_weights <checkpoint> <file>"
            )
        graph = Path(graph)
        if not graph.is_file():
            raise CommandError(f"{graph}: no such file")
        checkpoints = eusr_checkpoints()
        name = name or default_checkpoint(graph)
        if name not in checkpoints:
            raise CommandError(f"{name!r} is not a 4PP-EUSR checkpoint; known: {', '.join(sorted(checkpoints))}")
        checkpoint = checkpoints[name]
        weights_dir = Path(settings.PIPAL_WEIGHTS_DIR)
        weights_dir.mkdir(parents=True, exist_ok=True)
        target = weights_dir / checkpoint.file
        staging = Path(tempfile.mkdtemp(prefix=".convert_weights-", dir=weights_dir))
        try:
            try:
                provenance = convert_eusr.convert(
                    graph, staging / checkpoint.file, source_name=graph.name, options=checkpoint.build_options
                )
                # Loaded back through the platform's own loader before it replaces anything.
                weights.load_checkpoint(name, weights_dir=staging)
            except convert_eusr.ConversionError as error:
                raise CommandError(f"{graph}: {error}") from None
            except weights.WeightsError as error:
                raise CommandError(f"{graph}: the converted file does not load strictly: {error}") from None
            (staging / checkpoint.file).replace(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        loaded = weights.load_checkpoint(name, weights_dir=weights_dir)
        tensors = len(loaded.model.state_dict())
        self.stdout.write(
            f"{graph.name} -> {target} ({checkpoint.label}, checkpoint {name}): {tensors} tensors, "
            f"{provenance['parameters']:,} parameters, loaded back strictly; "
            f"sha256 {loaded.provenance['sha256']}; TensorFlow {provenance['tensorflow']}, "
            f"source sha256 {provenance['source_sha256']}, "
            f"graph inputs {', '.join(provenance['graph']['placeholders']) or '(none)'}"
        )
