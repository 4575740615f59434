"""What the training commands share (train_lpips, train_ranker, train_score_predictor, train_sr).

One place declares the options they have in common (``--name``, ``--iterations``, ``--batch``, ``--lr``,
``--seed``, ``--resume``, ``--threads``, ``--device``, ``--checkpoint-every``): their flag, type and kind;
each command passes its own default and help text. The helpers are the step progress bar, a line
written above a live bar, torch's thread count, and the refusals of a training run as CommandError.
"""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from django.core.management.base import CommandError
from PIL import Image
from tqdm import tqdm

from annotation.commands import StudyCommand
from core.commands import ApplicationCommand
from iqa.learned.errors import LearnedModelError, TrainingError

# option -> (flag, what argparse gets besides default/help/required)
SHARED_OPTIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "name": ("--name", {}),
    "iterations": ("--iterations", {"type": int}),
    "batch": ("--batch", {"type": int}),
    "lr": ("--lr", {"type": float}),
    "seed": ("--seed", {"type": int}),
    "resume": ("--resume", {"action": "store_true"}),
    "threads": ("--threads", {"type": int}),
    "device": ("--device", {"choices": ["cpu", "cuda"]}),
    "checkpoint_every": ("--checkpoint-every", {"type": int}),
}
# What a training run refuses with a message that says why: shown as CommandError, no traceback.
TRAINING_ERRORS: tuple[type[BaseException], ...] = (TrainingError, LearnedModelError)


class _Unset:
    def __repr__(self) -> str:
        return "no default"


UNSET = _Unset()


class TrainingOptions:
    """The shared options and helpers; mixed into a command class (see the two bases below)."""

    def add_shared_option(
        self, parser, option: str, *, help: str, default: Any = UNSET, required: bool = False
    ) -> None:
        """Add one of SHARED_OPTIONS with this command's default and help (no default given: argparse's)."""
        flag, kind = SHARED_OPTIONS[option]
        arguments = dict(kind, help=help)
        if default is not UNSET:
            arguments["default"] = default
        if required:
            arguments["required"] = True
        parser.add_argument(flag, **arguments)

    def add_shared_options(self, parser, **options: dict[str, Any] | str) -> None:
        """Several shared options in the order given: ``option=help`` or ``option={"help": ..., "default": ...}``."""
        for option, spec in options.items():
            self.add_shared_option(parser, option, **({"help": spec} if isinstance(spec, str) else spec))

    # --- helpers ---------------------------------------------------------------------------------------

    @staticmethod
    def progress_bar(total: int, desc: str, unit: str = "it") -> tqdm:
        """A bar on stderr, shown on a terminal only (tqdm's disable=None)."""
        return tqdm(total=total, unit=unit, desc=desc, disable=None)

    @staticmethod
    def step_progress(bar: tqdm) -> Callable[[int, float], None]:
        """``progress(step, loss)`` for a training loop's 1-based step: the bar follows the step (a resumed
        run starts where it stopped) and shows the loss."""

        def progress(step: int, loss: float) -> None:
            bar.update(step - bar.n)
            bar.set_postfix(loss=f"{loss:.4f}", refresh=False)

        return progress

    def announce(self, text: str) -> None:
        """A line on stdout that does not tear a live progress bar."""
        with tqdm.external_write_mode():
            self.stdout.write(text)

    @staticmethod
    def torch_threads(count: int | None):
        """Run with ``count`` torch CPU threads (0 or None: torch's default), restored afterwards."""
        from iqa.learned.training import torch_threads

        return torch_threads(count)

    def run_timed(self, train: Callable, *, steps: int, desc: str, threads: int, errors=()) -> tuple[Any, float]:
        """``train(progress)`` under a step progress bar, torch's thread count and the training refusals
        (as CommandError); returns (its result, wall seconds)."""
        started = time.perf_counter()
        with self.progress_bar(steps, desc) as bar, self.training_errors(*errors), self.torch_threads(threads):
            result = train(self.step_progress(bar))
        return result, time.perf_counter() - started

    @staticmethod
    def reference_pixels(reference) -> tuple[np.ndarray, bytes]:
        """A study reference's RGB pixels and its file's bytes; an unreadable file is a CommandError naming it."""
        try:
            with reference.file.open("rb") as handle:
                data = handle.read()
            with Image.open(io.BytesIO(data)) as image:
                return np.asarray(image.convert("RGB")).copy(), data
        except (OSError, ValueError) as error:
            raise CommandError(f"reference {reference.name}: cannot read {reference.file.name} ({error})") from None

    def study_training_images(self, study) -> tuple[list[str], list[np.ndarray]]:
        """The study's reference names and pixels; a study with fewer than 2 (one to train on, one to
        validate on) is refused."""
        references = list(study.references.order_by("name"))
        if len(references) < 2:
            raise CommandError(
                f"study {study.slug} has {len(references)} reference(s); training needs at least 2 "
                "(one to train on, one to validate on): add some with import_references"
            )
        return [reference.name for reference in references], [self.reference_pixels(r)[0] for r in references]

    @staticmethod
    def output_name(name: str) -> str:
        """``--name`` as the stem of the file a trainer writes (TRAINED_NAME_PATTERN), else a CommandError."""
        from core.weights import TRAINED_NAME_PATTERN

        if not TRAINED_NAME_PATTERN.fullmatch(name):
            raise CommandError(f"--name {name!r}: use letters, digits, '.', '_' and '-' only (a file name, no path)")
        return name

    @staticmethod
    def run_facts(names, train_indices, validation_indices, *, wall: float, threads: int, when) -> dict:
        """What every trained file's provenance records of its run: the split by name, the wall time, the torch
        thread count and version (a plain str: ``weights_only`` loading refuses a TorchVersion) and the date."""
        import torch

        return {
            "split": {"train": [names[i] for i in train_indices], "validation": [names[i] for i in validation_indices]},
            "wall_seconds": round(wall, 1),
            "torch_threads": threads,
            "torch": str(torch.__version__),
            "date": when.isoformat(),
        }

    @staticmethod
    def check_threads(threads: int) -> None:
        if threads < 0:
            raise CommandError(f"--threads must be 0 or more, not {threads}")

    @staticmethod
    @contextlib.contextmanager
    def training_errors(*extra: type[BaseException]) -> Iterator[None]:
        """TrainingError, LearnedModelError (and ``extra``) become CommandError with their message."""
        try:
            yield
        except (*TRAINING_ERRORS, *extra) as error:
            raise CommandError(str(error)) from None


class TrainingCommand(TrainingOptions, ApplicationCommand):
    """A training command that reads its data from files (train_ranker: a rank dataset folder)."""


class StudyTrainingCommand(TrainingOptions, StudyCommand):
    """A training command whose first argument is a study slug."""
