"""Synthetic raters for the acr, dcr and rank-k protocols: the analysis checked against a known truth.

Each image gets a hidden true quality (fixed by seed and image name, as for the pairwise
simulation). Synthetic raters of the subject model of Li & Bampis (a bias and an inconsistency of
their own: annotation/analysis/synthetic_raters.py) take trials from the real scheduler and answer
through the real vote service, practice trials and hidden checks included (good raters answer those
as their expected answer says; random raters answer at random and are screened out by the checks
they fail). The report compares the truth with the plain MOS, the subject model's quality (acr/dcr)
or the Plackett–Luce scores (rank-k), and the planted biases with the recovered ones.
"""

from __future__ import annotations

import hashlib
import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from annotation.analysis import protocol_results
from annotation.analysis.synthetic_raters import SyntheticRater
from annotation.analysis.synthetic_raters import ranking as draw_ranking
from annotation.models import DistortedImage, Rater, StimulusTrial, Study
from annotation.raters import rater_create
from annotation.rating.stimulus_trials import IssuedStimulusTrial, stimulus_next, stimulus_submit
from core.errors import ApplicationError
from iqa.correlation import RankAgreement, rank_agreement

# rank-k: true log-strengths are N(0, RANK_SPREAD²); 1.5 makes neighbours in a set of 4 differ
# often but not always (Plackett–Luce with Gumbel noise of scale 1).
RANK_SPREAD = 1.5


@dataclass(frozen=True)
class ProtocolSimulationReport:
    protocol: str
    entries_added: int
    images: int
    raters: int
    excluded: int
    mos: RankAgreement  # the plain MOS (acr/dcr) or mean Borda score (rank-k) against the truth
    model: RankAgreement | None  # the subject model's quality (acr/dcr) or Plackett–Luce (rank-k)
    bias_error: float | None  # acr/dcr: mean absolute error of the recovered biases (good raters)
    truth: dict[int, float]
    planted: dict[str, SyntheticRater]


def _true_value(seed: int, name: str, center: float, spread: float) -> float:
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return center + spread * float(np.random.default_rng(int.from_bytes(digest[:8], "little")).standard_normal())


def _truth(study: Study, images: list[DistortedImage], seed: int) -> dict[int, float]:
    scale = study.rating_scale
    if scale is None:
        return {image.id: _true_value(seed, image.name, 0.0, RANK_SPREAD) for image in images}
    # Qualities spread over the scale: centred, with a quarter of its range as SD (clipped by the raters' snap).
    center, spread = (scale.low + scale.high) / 2, (scale.high - scale.low) / 4
    return {image.id: _true_value(seed, image.name, center, spread) for image in images}


def _answer(trial: IssuedStimulusTrial, rater: SyntheticRater | None, truth, scale, rng) -> dict:
    """What a synthetic rater sends: good raters follow the model (and a check's expected answer),
    random raters (``rater`` None) pick anything."""
    row: StimulusTrial = trial.trial
    ids = [item.id for item in trial.items]
    if row.kind != StimulusTrial.Kind.RATING:
        if rater is None:
            return (
                {"order": rng.permutation(ids).tolist()}
                if "order" in row.expected
                else {"score": float(rng.choice(scale.values))}
            )
        if "order" in row.expected:
            return {"order": [ids[index] for index in row.expected["order"]]}
        fitting = [value for value in scale.values if row.expected["low"] <= value <= row.expected["high"]]
        return {"score": float(fitting[len(fitting) // 2])}
    if scale is None:
        if rater is None:
            return {"order": rng.permutation(ids).tolist()}
        scores = {item: truth[image] for item, image in zip(ids, row.images, strict=True)}
        return {"order": draw_ranking(scores, rng, noise=max(rater.inconsistency, 1e-6))}
    if rater is None:
        return {"score": float(rng.choice(scale.values))}
    perceived = truth[row.images[0]] + rater.bias + rater.inconsistency * rng.standard_normal()
    clipped = float(np.clip(perceived, scale.low, scale.high))
    if scale.continuous:
        return {"score": round(clipped, 3)}
    return {"score": float(min(scale.values, key=lambda value: abs(value - clipped)))}


def simulate_protocol_study(
    *,
    study: Study,
    per_image: float,
    seed: int = 0,
    bias: float = 0.5,
    inconsistency: float = 0.6,
    random_share: float = 0.0,
    raters: int = 0,
    progress: Callable[[int], None] | None = None,
) -> ProtocolSimulationReport:
    """Synthetic raters answer through the real path until each image holds about ``per_image``
    ratings (acr/dcr) or appearances in rankings (rank-k). Good raters' biases are N(0, ``bias``²)
    and their inconsistencies ``inconsistency`` x exp(N(0, 0.3²)) (rank-k: the Gumbel noise scale);
    ``random_share`` of the raters answer at random."""
    if study.is_pairwise:
        raise ApplicationError(f"study {study.slug!r} is {study.protocol}: use the pairwise simulation")
    if per_image <= 0:
        raise ApplicationError("the number of ratings per image must be positive")
    images = list(DistortedImage.objects.filter(study=study).order_by("id"))
    if not images:
        raise ApplicationError(f"study {study.slug!r} has no images to rate")
    rng = np.random.default_rng(seed)
    pick = random.Random(seed)
    truth = _truth(study, images, seed)
    scale = study.rating_scale
    per_trial = study.rank_k if scale is None else 1
    wanted = int(round(per_image * len(images) / per_trial))
    planted: dict[str, SyntheticRater] = {}
    start = secrets.token_hex(3)
    added = made = 0
    # New raters join until the study holds what was asked (each stops at the study's quota), or
    # ``raters`` have taken part, or a new rater finds nothing left to rate.
    while added < wanted and (not raters or made < raters):
        rater, _token = rater_create(study=study, external_id=f"sim-{start}-{made}", synthetic=True, consented=True)
        made += 1
        behaviour = None
        if rng.random() >= random_share:
            behaviour = SyntheticRater(
                name=rater.external_id,
                bias=float(rng.normal(0.0, bias)),
                inconsistency=float(inconsistency * np.exp(rng.normal(0.0, 0.3))),
            )
            planted[rater.external_id] = behaviour
        before = added
        trial = stimulus_next(study=study, rater=rater, rng=pick)
        while trial is not None and added < wanted:
            answer = _answer(trial, behaviour, truth, scale, rng)
            outcome = stimulus_submit(
                study=study,
                rater=rater,
                token=trial.token,
                response_ms=int(rng.integers(1500, 6000)),
                enforce_rate_limit=False,
                rng=pick,
                **answer,
            )
            if outcome.entry is not None:
                added += 1
                if progress:
                    progress(1)
            trial = outcome.next
        if added == before and behaviour is not None:
            break  # a good rater found nothing left to rate
    return _report(study, images, truth, planted, added, made)


def _report(study, images, truth, planted, added, raters) -> ProtocolSimulationReport:
    results = protocol_results.protocol_results(study).set_index("image")
    names = {image.id: image.name for image in images}
    rated = [image for image in images if image.name in results.index and results.at[image.name, "n"] > 0]
    true_values = [truth[image.id] for image in rated]
    groups = [image.reference_id for image in rated]
    if study.rating_scale is None:
        mos_column, model_column = "borda", "pl_score"
    else:
        mos_column, model_column = "mos", "mle_quality"
    mos = rank_agreement([float(results.at[names[i.id], mos_column]) for i in rated], true_values, groups)
    model_values = [float(results.at[names[i.id], model_column]) for i in rated]
    model = None if any(np.isnan(model_values)) else rank_agreement(model_values, true_values, groups)
    bias_error = None
    if study.rating_scale is not None:
        screening = protocol_results.rater_screening(study).set_index("rater")
        if "bias" in screening:
            recovered = {name: screening.at[name, "bias"] for name in planted if name in screening.index}
            if recovered:
                # The model's biases average zero over raters: compare after centring the planted ones too.
                planted_mean = np.mean([planted[name].bias for name in recovered])
                recovered_mean = np.mean(list(recovered.values()))
                bias_error = float(
                    np.mean(
                        [
                            abs((planted[name].bias - planted_mean) - (value - recovered_mean))
                            for name, value in recovered.items()
                        ]
                    )
                )
    excluded = Rater.objects.filter(study=study, synthetic=True, excluded=True).count()
    return ProtocolSimulationReport(
        protocol=study.protocol,
        entries_added=added,
        images=len(images),
        raters=raters,
        excluded=excluded,
        mos=mos,
        model=model,
        bias_error=bias_error,
        truth=truth,
        planted=planted,
    )
