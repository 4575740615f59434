"""What the learned-metric training runs share (no Django here).

* ``split_references``: held-out references, so no reference (and no patch of
  one) is in both the training and the validation set (SPEC §6: a patch split leaks).
* ``TrainingRun``: one folder per run (``store``'s layout). It refuses to
  overwrite a finished or half-finished run unless asked to resume, and a resume
  must use the same data, split and hyper-parameters (only the iteration count
  and the checkpoint interval may change). Checkpoints carry the model, optimiser, scheduler, RNG states and the
  loss history, so a resumed run continues exactly where it stopped.
"""

from __future__ import annotations

import contextlib
import json
import random
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from iqa.learned import store
from iqa.learned.errors import TrainingError

__all__ = ["TrainingError", "TrainingRun", "read_rgb", "split_references", "torch_threads"]
# Settings a resumed run may change: a longer run, checkpoints more or less often.
RESUMABLE_CHANGES = ("iterations", "checkpoint_every")


def read_rgb(path) -> np.ndarray:
    """HxWx3 uint8 RGB, writable (torch.from_numpy wants that); an unreadable file is named."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return np.array(image.convert("RGB"))
    except (OSError, ValueError) as error:
        raise TrainingError(f"{path}: cannot read the image ({error})") from None


def split_references(names: Sequence[str], holdout: float, seed: int) -> tuple[list[str], list[str]]:
    """(train, validation) reference names: a seeded shuffle of the sorted names, ``holdout``
    of them (at least one, at most all but one) kept for validation."""
    unique = sorted(set(names))
    if len(unique) < 2:
        raise TrainingError(
            f"{len(unique)} reference(s): training needs at least 2 (one to train on, one to validate on)"
        )
    if not 0 < holdout < 1:
        raise TrainingError(f"holdout must be between 0 and 1, not {holdout}")
    order = np.random.default_rng(seed).permutation(len(unique))
    count = min(len(unique) - 1, max(1, round(holdout * len(unique))))
    validation = sorted(unique[i] for i in order[:count])
    train = sorted(unique[i] for i in order[count:])
    return train, validation


@contextlib.contextmanager
def torch_threads(count: int | None):
    """Run with ``count`` torch CPU threads (0 or None: leave torch's default)."""
    import torch

    previous = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _canonical(value):
    return json.loads(json.dumps(value, sort_keys=True, default=str))


class TrainingRun:
    """A run folder: start it, checkpoint it, resume it, finish it.

    ``settings`` are the hyper-parameters (with ``iterations``); ``data`` names the
    data and the split. Both go into the manifest."""

    def __init__(self, folder: Path, *, kind: str, settings: dict, data: dict, resume: bool = False):
        self.folder = Path(folder)
        self.kind = kind
        self.settings = _canonical(settings)
        self.data = _canonical(data)
        self.resume = resume
        self.history: list[dict] = []
        self._check_folder()

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def state_path(self) -> Path:
        return self.folder / store.STATE_FILE

    # What the resume refusal says when the data's fingerprint differs (a subclass's data has other sources).
    data_changed = "the data or the split changed (the study gained or lost judgments or images)"

    def read_manifest(self) -> dict:
        """The run folder's manifest (a subclass whose kind is not a learned metric reads its own)."""
        return store.read_manifest(self.folder)

    def earlier_settings(self, manifest: dict) -> dict:
        """The settings an earlier run recorded, as the resume check compares them with today's."""
        return manifest.get("settings", {})

    def _check_folder(self) -> None:
        manifest_path = self.folder / store.MANIFEST_FILE
        if not manifest_path.exists():
            if self.resume:
                raise TrainingError(f"--resume: {self.folder} holds no earlier run of {self.name}")
            if self.folder.exists() and any(self.folder.iterdir()):
                raise TrainingError(f"{self.folder} exists and is not a training run: choose another --name")
            return
        manifest = self.read_manifest()
        if not self.resume:
            raise TrainingError(
                f"{self.name} exists already ({self.folder}): continue it with --resume or choose another --name"
            )
        if not self.state_path.is_file():
            raise TrainingError(f"--resume: {self.state_path} is missing, so {self.name} cannot continue")
        differences = []
        if manifest.get("kind") != self.kind:
            differences.append(f"kind {manifest.get('kind')} vs {self.kind}")
        before = {k: v for k, v in self.earlier_settings(manifest).items() if k not in RESUMABLE_CHANGES}
        now = {k: v for k, v in self.settings.items() if k not in RESUMABLE_CHANGES}
        for key in sorted(set(before) | set(now)):
            if before.get(key) != now.get(key):
                differences.append(f"{key} {before.get(key)!r} then, {now.get(key)!r} now")
        if manifest.get("data") != self.data:
            differences.append(self.data_changed)
        if differences:
            raise TrainingError(f"--resume of {self.name} with other settings: " + "; ".join(differences))

    def start(self) -> None:
        """Write the manifest of a new run (or update the iteration count of a resumed one)."""
        manifest = self.read_manifest() if self.resume else {}
        manifest.update(kind=self.kind, name=self.name, settings=self.settings, data=self.data)
        store.write_json(self.folder / store.MANIFEST_FILE, manifest)

    def restore(self, model, optimizer, scheduler=None, rng: np.random.Generator | None = None) -> int:
        """Load the last checkpoint into these objects; return the steps already done (0 when new)."""
        import torch

        if not self.resume:
            return 0
        try:
            state = torch.load(self.state_path, map_location="cpu", weights_only=True)
        except Exception as error:  # noqa: BLE001 - a damaged checkpoint is named, whatever torch raised
            raise TrainingError(f"{self.state_path} cannot be read: {error}") from None
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None and state.get("scheduler") is not None:
            scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        random.setstate(_python_state(state["python_rng"]))
        if rng is not None:
            rng.bit_generator.state = state["numpy_rng"]
        self.history = list(state.get("history", []))
        return int(state["step"])

    def checkpoint(self, step: int, model, optimizer, scheduler=None, rng: np.random.Generator | None = None) -> None:
        import torch

        state = {
            "step": step,
            "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "torch_rng": torch.get_rng_state(),
            "python_rng": list(random.getstate()),
            "numpy_rng": rng.bit_generator.state if rng is not None else None,
            "history": self.history,
        }
        store.atomic_write_bytes(self.state_path, lambda stream: torch.save(state, stream))

    def finish(self, *, config: dict, state_dict: dict, results: dict, metric: dict) -> str:
        """Write ``model.pt`` and the final manifest; return the model's SHA-256.

        ``metric``: ``higher_is_better``, ``full_reference`` and ``description`` of the metric it becomes."""
        sha256 = store.save_model(self.folder, kind=self.kind, config=config, state_dict=state_dict)
        manifest = store.read_manifest(self.folder)
        manifest.update(
            model_sha256=sha256,
            config=_canonical(config),
            results=_canonical(results),
            metric=_canonical(metric),
            history=self.history[-1000:],
        )
        store.write_json(self.folder / store.MANIFEST_FILE, manifest)
        return sha256


def _python_state(saved) -> tuple:
    version, internal, gauss = saved
    return version, tuple(internal), gauss
