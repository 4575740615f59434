"""Studies: creating one with its options, and the refusals of a study whose MOS comes from labels."""

from __future__ import annotations

from annotation.analysis import elo
from annotation.models import Study
from annotation.rating import scales
from core.errors import ApplicationError, Conflict


class LabelsStudy(Conflict):
    """A study whose MOS comes from imported labels: it takes no votes and has
    no judgment log to replay."""

    code = "imported_labels"


STUDY_OPTIONS = (
    "protocol",
    "scale",
    "rank_k",
    "zoom_patch",
    "trials_per_rater",
    "training_trials",
    "gold_every",
    "min_response_ms",
    "min_vote_interval_ms",
    "completion_code",
    "completion_url",
    "screen_out_code",
    "screen_out_url",
    "allow_resume",
    "allow_ties",
    "narrow_layout",
    "screen_calibration",
    "max_non_native_share",
    "min_px_per_degree",
    "instructions",
    "pair_policy",
    "bt_scope",
    "bt_rounds",
    "target_ci_width",
    "target_kendall",
)


def study_create(
    *,
    slug: str,
    name: str = "",
    elo_m: float = elo.DEFAULT_M,
    elo_k: float = elo.DEFAULT_K,
    elo_initial: float = elo.DEFAULT_INITIAL,
    mos_window: int = elo.DEFAULT_MOS_WINDOW,
    **options,
) -> Study:
    """A new study; ``options`` may set any of STUDY_OPTIONS (defaults otherwise). ``scale`` may be
    a built-in scale's name (annotation/rating/scales.py) or a scale as JSON; acr/dcr studies store
    their scale whole, so its wording stays with the study's data."""
    if Study.objects.filter(slug=slug).exists():
        raise Conflict(f"a study with slug {slug!r} already exists")
    options = _with_scale(dict(options))
    unknown = set(options) - set(STUDY_OPTIONS)
    if unknown:
        raise ApplicationError(f"unknown study option(s): {', '.join(sorted(unknown))}")
    elo.EloParams(m=elo_m, k=elo_k, initial=elo_initial, mos_window=mos_window)  # validates
    study = Study(
        slug=slug,
        name=name or slug,
        elo_m=elo_m,
        elo_k=elo_k,
        elo_initial=elo_initial,
        mos_window=mos_window,
        **{key: value for key, value in options.items() if value is not None},
    )
    study.full_clean()
    study.save()
    return study


def _with_scale(options: dict) -> dict:
    """The options with the scale resolved: a built-in name to its JSON; an acr/dcr study without
    one gets its protocol's built-in scale; a scale on another protocol is refused."""
    protocol = options.get("protocol") or Study.Protocol.PAIRWISE_FR
    scale = options.pop("scale", None)
    continuous = bool(options.pop("continuous", False))
    if protocol not in scales.DEFAULT_SCALE:
        if scale or continuous:
            raise ApplicationError(f"a {protocol} study has no rating scale (scales are for acr and dcr)")
        return options
    try:
        if scale is None or isinstance(scale, str):
            resolved = scales.built_in(scale or scales.DEFAULT_SCALE[protocol], continuous=continuous)
        else:
            resolved = scales.scale_from_json(scale)
    except scales.ScaleError as error:
        raise ApplicationError(f"scale: {error}", fields={"scale": [str(error)]}) from None
    return {**options, "scale": resolved.to_json()}


LABELS_REFUSALS = {
    "vote": "takes no votes: its MOS comes from imported labels (import_labels), not from judgments; "
    "collect votes in a study of its own",
    "replay": "takes no judgments: its MOS comes from imported labels (import_labels), which a replay would overwrite",
    "recompute": "has no judgment log to recompute: its MOS comes from imported labels (import_labels), which "
    "a replay would overwrite",
}


def study_require_judgments(study: Study, *, action: str = "vote") -> None:
    """Refuse to vote on, replay into or recompute a study whose MOS comes from
    imported labels (``action``: vote, replay or recompute)."""
    if study.mos_source == Study.MosSource.LABELS:
        raise LabelsStudy(f"study {study.slug!r} {LABELS_REFUSALS[action]}")
