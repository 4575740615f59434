"""RankSRGAN's Ranker: margin-ranking loss, training and validation (no Django here).

The network and its official weights are in ``ranker_arch``, whose docstring describes the recipe.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch
from torch import nn

from iqa.learned import rank_dataset
from iqa.learned.ranker_arch import (
    ARCH,
    HISTORY_EVERY,
    MARGIN,
    MIN_SIDE,
    OFFICIAL_NF,
    SCORE_CLAMP,
    build,
)
from iqa.learned.training import TrainingError, TrainingRun

# --- loss ---------------------------------------------------------------------------------------------


def rank_targets(label1: torch.Tensor, label2: torch.Tensor) -> torch.Tensor:
    """+1 where the first image's label is higher, -1 where it is lower (ties make no pair: refused)."""
    target = torch.sign(label1 - label2)
    if bool((target == 0).any()):
        raise ValueError("tied labels make no ranking pair")
    return target


def ranking_loss(score1: torch.Tensor, score2: torch.Tensor, target: torch.Tensor, margin: float = MARGIN,
                 clamp: float | None = SCORE_CLAMP) -> torch.Tensor:
    """``mean(max(0, -target * (s1 - s2) + margin))`` on scores clamped to ±``clamp`` (the official code):
    target +1 pushes ``s1`` above ``s2`` by the margin."""
    score1, score2 = score1.reshape(-1), score2.reshape(-1)
    if clamp is not None:
        score1, score2 = score1.clamp(-clamp, clamp), score2.clamp(-clamp, clamp)
    return nn.functional.margin_ranking_loss(score1, score2, target.reshape(-1).to(score1.dtype), margin=margin)


# --- training -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RankerSettings:
    iterations: int = 1000
    batch: int = 16
    crop: int = 128  # 0: whole patches
    augment: bool = True  # random horizontal/vertical flips and transposition, the same for both images of a pair
    lr: float = 1e-4  # train_Ranker.yml lr_R (the paper says 1e-3)
    weight_decay: float = 1e-4
    lr_steps: tuple[int, ...] | None = None  # None: 1/4 and 1/2 of the iterations (the config: 100k, 200k of 400k)
    lr_gamma: float = 0.5
    margin: float = MARGIN
    score_clamp: float = SCORE_CLAMP
    nf: int = OFFICIAL_NF
    seed: int = 0

    def resolved(self) -> RankerSettings:
        if self.lr_steps is not None:
            return replace(self, lr_steps=tuple(int(s) for s in self.lr_steps))
        return replace(self, lr_steps=(max(1, self.iterations // 4), max(1, self.iterations // 2)))

    def as_dict(self) -> dict:
        out = asdict(self.resolved())
        out["lr_steps"] = list(out["lr_steps"])
        return out

    def config(self) -> dict:
        """What ``build`` needs to rebuild the network."""
        return {"arch": ARCH, "nf": self.nf, "in_nc": 3}


def check_settings(settings: RankerSettings) -> None:
    for name in ("iterations", "batch", "nf"):
        if getattr(settings, name) < 1:
            raise TrainingError(f"{name} must be at least 1, not {getattr(settings, name)}")
    if settings.crop < 0 or 0 < settings.crop < MIN_SIDE:
        raise TrainingError(f"the crop must be 0 (whole patches) or at least {MIN_SIDE} pixels, not {settings.crop}")
    for name in ("lr", "margin"):
        if not getattr(settings, name) > 0:
            raise TrainingError(f"{name} must be positive, not {getattr(settings, name)}")
    if not settings.weight_decay >= 0 or not 0 < settings.lr_gamma <= 1 or not settings.score_clamp > 0:
        raise TrainingError("weight decay must be 0 or more, lr_gamma in (0, 1] and score_clamp positive")
    steps = settings.resolved().lr_steps
    if any(step < 1 for step in steps) or list(steps) != sorted(steps):
        raise TrainingError(f"lr_steps must be increasing positive iteration numbers, not {list(steps)}")


@dataclass
class TrainResult:
    sha256: str
    results: dict  # validation figures, as stored in the manifest
    losses: list[float]  # per step of this session
    steps_before: int  # steps a resumed run had already done
    seconds: float = 0.0
    config: dict = field(default_factory=dict)


class PairSampler:
    """Batches of content-aligned pairs from one split of a rank dataset (numpy ``rng`` only: resumable)."""

    def __init__(self, dataset: rank_dataset.RankDataset, split: str, crop: int, augment: bool):
        self.dataset = dataset
        self.pairs = dataset.pairs(split)
        self.crop = crop
        self.augment = augment
        if not self.pairs:
            raise TrainingError(
                f"{dataset.folder}: the {split} split has no group with two patches of different labels, so no "
                "pair to rank: rebuild the dataset with more images or levels"
            )

    def batch(self, rng: np.random.Generator, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        firsts, seconds, targets = [], [], []
        for _ in range(size):
            group = self.pairs[int(rng.integers(len(self.pairs)))]
            i, j = group[int(rng.integers(len(group)))]
            if rng.random() < 0.5:
                i, j = j, i
            a, b = self.dataset.image(i), self.dataset.image(j)
            if a.shape != b.shape:
                raise TrainingError(
                    f"{self.dataset.path(i)} and {self.dataset.path(j)} are one group but of different sizes"
                )
            if self.crop:
                height, width = a.shape[:2]
                if min(height, width) < self.crop:
                    raise TrainingError(
                        f"{self.dataset.path(i)} is {width}x{height}, smaller than the {self.crop}-pixel crop: "
                        "use a smaller --crop"
                    )
                top = int(rng.integers(height - self.crop + 1))
                left = int(rng.integers(width - self.crop + 1))
                a = a[top : top + self.crop, left : left + self.crop]
                b = b[top : top + self.crop, left : left + self.crop]
            if self.augment:  # BasicSR's augment: hflip, vflip, rot90 as a transposition
                hflip, vflip, transpose = rng.random(3) < 0.5
                for flag, op in ((hflip, lambda x: x[:, ::-1]), (vflip, lambda x: x[::-1]),
                                 (transpose, lambda x: x.swapaxes(0, 1))):
                    if flag:
                        a, b = op(a), op(b)
            firsts.append(a)
            seconds.append(b)
            label_i, label_j = self.dataset.items[i].label, self.dataset.items[j].label
            targets.append(1.0 if label_i > label_j else -1.0)
        shapes = {x.shape for x in firsts}
        if len(shapes) > 1:
            raise TrainingError(
                f"patches of different sizes ({sorted(shapes)}) cannot share a batch: give a --crop no larger than "
                "the smallest patch"
            )
        return _to_tensor(firsts), _to_tensor(seconds), torch.tensor(targets)


def _to_tensor(images: list[np.ndarray]) -> torch.Tensor:
    stacked = np.ascontiguousarray(np.stack(images).transpose(0, 3, 1, 2), dtype=np.float32)
    return torch.from_numpy(stacked / np.float32(255.0))


def train_step(model, optimizer, first, second, target, settings: RankerSettings) -> float:
    optimizer.zero_grad(set_to_none=True)
    score1 = model(first)  # two passes, as Ranker_model.optimize_parameters
    score2 = model(second)
    loss = ranking_loss(score1, score2, target, settings.margin, settings.score_clamp)
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def _check_validation_sizes(dataset: rank_dataset.RankDataset) -> None:
    """Validation scores whole patches: each needs MIN_SIDE pixels a side (read from the PNG headers only)."""
    from PIL import Image

    for members in dataset.groups("validation").values():
        for index in members:
            path = dataset.path(index)
            try:
                with Image.open(path) as image:
                    width, height = image.size
            except (OSError, ValueError) as error:
                raise rank_dataset.RankDatasetError(f"{path}: cannot read the patch ({error})") from None
            if min(width, height) < MIN_SIDE:
                raise TrainingError(
                    f"{path} is {width}x{height}: the Ranker needs at least {MIN_SIDE} pixels a side "
                    "(rebuild the dataset with larger patches or images)"
                )


def train(
    dataset: rank_dataset.RankDataset,
    settings: RankerSettings,
    run: TrainingRun,
    progress: Callable[[int, float], None] | None = None,
    *,
    device: str = "cpu",
    checkpoint_every: int = 100,
    validation_groups: int = 0,
    validation_progress: Callable[[int, int], None] | None = None,
) -> TrainResult:
    """Train (or resume) a Ranker on ``dataset``'s train split, validate on its validation split, and finish
    ``run`` as a metric (direction from the dataset's labels). Deterministic for a seed on the CPU with a fixed
    thread count; a resumed run continues exactly (same batches, optimiser and scheduler state).

    ``progress(step, loss)`` after every step; ``validation_progress(done, total)`` while validating.
    ``validation_groups``: validate on a seeded random subset of that many validation groups (0: all; the
    official validation set, 10% of ~150k patch triplets, takes hours on a CPU at 296 pixels)."""
    settings = settings.resolved()
    check_settings(settings)
    started = time.perf_counter()
    sampler = PairSampler(dataset, "train", settings.crop, settings.augment)
    if not dataset.pairs("validation"):
        raise TrainingError(
            f"{dataset.folder}: the validation split has no group with two patches of different labels, so the "
            "Ranker cannot be validated: rebuild the dataset (more images, or a larger validation share)"
        )
    _check_validation_sizes(dataset)
    run.start()
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    model = build(settings.config()).to(device)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, list(settings.lr_steps), settings.lr_gamma)
    done = run.restore(model, optimizer, scheduler, rng)
    if done >= settings.iterations:
        raise TrainingError(
            f"{run.name} has done {done} iterations already: give --iterations above {done} to train further"
        )
    losses: list[float] = []
    pending: list[float] = []
    for step in range(done + 1, settings.iterations + 1):
        first, second, target = sampler.batch(rng, settings.batch)
        loss = train_step(model, optimizer, first.to(device), second.to(device), target.to(device), settings)
        scheduler.step()
        losses.append(loss)
        pending.append(loss)
        if step % HISTORY_EVERY == 0 or step == settings.iterations:
            run.history.append({"step": step, "loss": float(np.mean(pending)), "lr": optimizer.param_groups[0]["lr"]})
            pending = []
        if checkpoint_every and step % checkpoint_every == 0 and step < settings.iterations:
            run.checkpoint(step, model, optimizer, scheduler, rng)  # --resume continues from the last of these
        if progress is not None:
            progress(step, loss)
    run.checkpoint(settings.iterations, model, optimizer, scheduler, rng)
    results = validate(
        model, dataset, device=device, progress=validation_progress, groups=validation_groups, seed=settings.seed
    )
    tail = losses[-min(len(losses), 100) :]
    results.update(
        iterations=settings.iterations,
        final_loss=float(np.mean(tail)),
        final_loss_steps=len(tail),
        dataset=str(dataset.folder),
        dataset_source=dataset.source,
        seconds_this_session=round(time.perf_counter() - started, 1),
    )
    state_dict = {key: value.detach().cpu() for key, value in model.state_dict().items()}
    label = dataset.manifest["label"]
    metric = {
        "higher_is_better": not dataset.higher_is_worse,
        "full_reference": False,
        "description": (
            f"RankSRGAN Ranker (VGG-12, nf {settings.nf}) trained by train_ranker on a {dataset.source} rank dataset "
            f"(labels: {label.get('meaning', '?')}); it scores higher-label images higher, so "
            f"{'lower' if dataset.higher_is_worse else 'higher'} is better; validation SROCC {results['srocc']}"
        ),
    }
    sha256 = run.finish(config=settings.config(), state_dict=state_dict, results=results, metric=metric)
    return TrainResult(
        sha256=sha256,
        results=results,
        losses=losses,
        steps_before=done,
        seconds=time.perf_counter() - started,
        config=settings.config(),
    )


# --- validation ---------------------------------------------------------------------------------------


def score_patches(model, dataset: rank_dataset.RankDataset, indices: list[int], device: str = "cpu") -> list[float]:
    """Ranker scores of some patches (eval mode; one batch per run of same-size patches)."""
    model.eval()
    scores: list[float] = []
    with torch.inference_mode():
        start = 0
        while start < len(indices):
            shape = dataset.image(indices[start]).shape
            end = start + 1
            while end < len(indices) and end - start < 16 and dataset.image(indices[end]).shape == shape:
                end += 1
            batch = _to_tensor([dataset.image(i) for i in indices[start:end]]).to(device)
            scores += [float(v) for v in model(batch).reshape(-1).cpu()]
            start = end
    return scores


def _spearman(x, y) -> float | None:
    from scipy import stats

    if len(x) < 2 or len(set(x)) < 2 or len(set(y)) < 2:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = stats.spearmanr(x, y).statistic  # average ranks for ties: the tie-corrected coefficient
    return None if value is None or not math.isfinite(value) else round(float(value), 6)


def validation_figures(scores: list[float], labels: list[float], groups: list[str]) -> dict:
    """SROCC and pair accuracy of Ranker scores against labels (scipy's tie-corrected Spearman).

    * ``srocc`` (the one printed and stored as the Ranker's figure): pooled over every validation patch,
      scores against the label's rank *within its group* (1 = lowest label; ties share their mean rank) —
      the paper's labelling of every patch triplet as (3, 2, 1) (journal Sec. 5.1, Table 2), computed as
      Spearman's rho with tie correction rather than Eq. 13, which assumes no ties.
    * ``srocc_label_values``: pooled against the label values themselves (they also compare across images,
      which the Ranker never sees in a pair).
    * ``srocc_group_mean``: the mean of the per-group coefficients (groups with 2+ distinct labels).
    * ``pair_accuracy``: the share of within-group pairs with different labels that the scores order the
      same way (a score tie counts as wrong) — the official ``rank_pair_test``'s "aligned pair accuracy"."""
    from scipy import stats

    by_group: dict[str, list[int]] = {}
    for index, group in enumerate(groups):
        by_group.setdefault(group, []).append(index)
    ranks = [0.0] * len(labels)
    per_group, correct, pairs = [], 0, 0
    for members in by_group.values():
        member_labels = [labels[i] for i in members]
        for i, rank in zip(members, stats.rankdata(member_labels, method="average"), strict=True):
            ranks[i] = float(rank)
        value = _spearman([scores[i] for i in members], member_labels)
        if value is not None:
            per_group.append(value)
        for k, i in enumerate(members):
            for j in members[k + 1 :]:
                if labels[i] != labels[j]:
                    pairs += 1
                    correct += (scores[i] - scores[j]) * (labels[i] - labels[j]) > 0
    return {
        "srocc": _spearman(scores, ranks),
        "srocc_definition": "pooled over validation patches: Ranker score vs the label's rank within its group "
        "(scipy spearmanr, tie-corrected)",
        "srocc_label_values": _spearman(scores, labels),
        "srocc_group_mean": round(float(np.mean(per_group)), 6) if per_group else None,
        "groups_with_srocc": len(per_group),
        "pair_accuracy": round(correct / pairs, 6) if pairs else None,
        "validation_pairs": pairs,
        "validation_patches": len(scores),
        "validation_groups": len(by_group),
    }


def validate(
    model, dataset: rank_dataset.RankDataset, *, device: str = "cpu", progress=None, groups: int = 0, seed: int = 0
) -> dict:
    """Score the validation patches (whole patches, eval mode) and compare with the labels; ``groups``
    limits it to a seeded random subset of that many groups (0: all)."""
    found = list(dataset.groups("validation").values())
    chosen = found
    if 0 < groups < len(found):
        picked = np.random.default_rng([seed, 1]).choice(len(found), size=groups, replace=False)
        chosen = [found[i] for i in sorted(picked.tolist())]
    indices = [i for members in chosen for i in members]
    scores: list[float] = []
    for done, members in enumerate(chosen, start=1):
        scores += score_patches(model, dataset, members, device)
        if progress is not None:
            progress(done, len(chosen))
    model.train()
    labels = [dataset.items[i].label for i in indices]
    figures = validation_figures(scores, labels, [dataset.items[i].group for i in indices])
    figures["validation_images"] = dataset.source_images("validation")
    figures["validation_groups_available"] = len(found)
    return figures
