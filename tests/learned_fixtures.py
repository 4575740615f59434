"""A small study whose judgments carry a learnable signal, for the learned-metric tests.

References are smooth random textures; each distorted image is its reference
with Gaussian noise of a known strength (type 01) or a box blur (type 02) at
a level; the synthetic raters prefer the less distorted image of a pair, so a
metric can learn the order. Judgments go through the real replay service, so
the Elo MOS is the platform's own."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import numpy as np
from PIL import Image

from annotation.analysis.replay import ReplayRow, judgments_replay
from annotation.imports.folders import images_import, plan_folder_import
from annotation.studies import study_create

LEVELS = (1, 2, 3)


def _texture(rng: np.random.Generator, size: int) -> np.ndarray:
    noise = rng.random((size // 4 + 1, size // 4 + 1, 3))
    upscaled = np.kron(noise, np.ones((4, 4, 1)))[:size, :size]
    return (upscaled * 200 + 28).astype(np.uint8)


def _distort(image: np.ndarray, code: str, level: int, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    if code == "01":
        sigma = 12.0 * level
        noisy = image.astype(np.float64) + rng.normal(0, sigma, image.shape)
        return np.clip(np.rint(noisy), 0, 255).astype(np.uint8), sigma / 12.0
    small = Image.fromarray(image).resize((image.shape[1] // (level + 1),) * 2)
    blurred = np.asarray(small.resize(image.shape[:2][::-1]))
    return blurred, float(level)


def make_learnable_study(slug: str, root: Path, *, references: int = 4, size: int = 64, seed: int = 0,
                         noise: float = 0.1, repeats: int = 2):
    """A study with ``references`` x 2 types x 3 levels images and judgments on every pair of a
    reference (``repeats`` votes each; a share ``noise`` of votes flipped)."""
    rng = np.random.default_rng(seed)
    (root / "Ref").mkdir(parents=True)
    (root / "Dis").mkdir(parents=True)
    badness: dict[str, float] = {}
    for r in range(1, references + 1):
        name = f"R{r:04d}"
        reference = _texture(rng, size)
        Image.fromarray(reference).save(root / "Ref" / f"{name}.png")
        for code in ("01", "02"):
            for level in LEVELS:
                image, strength = _distort(reference, code, level, rng)
                file = f"{name}_{code}_{level:02d}.png"
                Image.fromarray(image).save(root / "Dis" / file)
                badness[file] = strength + (0.5 if code == "02" else 0.0)
    (root / "distortion_types.csv").write_text(
        "id,name,category,subtype\n01,Noise,traditional,noise\n02,Blur,traditional,blur\n"
    )
    study = study_create(slug=slug, name=slug)
    study.training_trials = 0
    study.gold_every = 0
    study.min_vote_interval_ms = 0
    study.save()
    images_import(study=study, plan=plan_folder_import(study, root))
    votes = random.Random(seed)
    rows, line = [], 1
    for r in range(1, references + 1):
        names = sorted(n for n in badness if n.startswith(f"R{r:04d}_"))
        for _ in range(repeats):
            for a, b in itertools.combinations(names, 2):
                a_wins = badness[a] < badness[b]
                if votes.random() < noise:
                    a_wins = not a_wins
                line += 1
                rows.append(ReplayRow(line, a, b, a_wins, f"rater-{votes.randint(1, 5)}"))
    votes.shuffle(rows)
    judgments_replay(study=study, rows=rows)
    return study, badness
