"""The counters on a rater's row, rebuilt from the judgment log and the control trials.

The vote paths keep them up to date one vote at a time (hot_path, services); this rebuilds
them exactly from the log (after a replay, a change of the study's QC thresholds, and in the
migration that added them). Model classes are passed in, so the migration's historical
models can use it too.
"""

from django.db.models import Count, F, Q
from django.db.models.functions import Abs


def recount(*, rater_model, judgment_model, control_model, rater_ids, fast_below_ms: int, clear_gap: float) -> None:
    """Rewrite the counters of ``rater_ids`` (all of one study, whose thresholds are given)."""
    if not rater_ids:
        return
    clear = Q(tie=False) & Q(elo_gap__gte=clear_gap)
    votes = {
        row["rater_id"]: row
        for row in judgment_model.objects.filter(rater_id__in=rater_ids)
        .annotate(elo_gap=Abs(F("elo_a_before") - F("elo_b_before")))
        .values("rater_id")
        .annotate(
            cast=Count("id"),
            chose_left=Count("id", filter=Q(tie=False, winner_id=F("image_a_id"))),
            tied=Count("id", filter=Q(tie=True)),
            timed=Count("id", filter=Q(response_ms__isnull=False)),
            fast=Count("id", filter=Q(response_ms__lt=fast_below_ms)),
            shown_native=Count("id", filter=Q(native=True)),
            known=Count("id", filter=Q(native__isnull=False)),
            clear_pairs=Count("id", filter=clear),
            agreed=Count(
                "id",
                filter=clear
                & (
                    Q(winner_id=F("image_a_id"), elo_a_before__gt=F("elo_b_before"))
                    | Q(winner_id=F("image_b_id"), elo_b_before__gt=F("elo_a_before"))
                ),
            ),
        )
    }
    controls = {
        row["rater_id"]: row
        for row in control_model.objects.filter(rater_id__in=rater_ids, status="voted")
        .values("rater_id")
        .annotate(gold=Count("id", filter=Q(kind="gold")), practice=Count("id", filter=Q(kind="training")))
    }
    for rater_id in sorted(rater_ids):
        v, c = votes.get(rater_id, {}), controls.get(rater_id, {})
        rater_model.objects.filter(pk=rater_id).update(
            trials_done=v.get("cast", 0) + c.get("gold", 0),
            practice_done=c.get("practice", 0),
            votes_cast=v.get("cast", 0),
            votes_left=v.get("chose_left", 0),
            votes_tied=v.get("tied", 0),
            votes_timed=v.get("timed", 0),
            votes_fast=v.get("fast", 0),
            votes_native=v.get("shown_native", 0),
            votes_native_known=v.get("known", 0),
            votes_clear=v.get("clear_pairs", 0),
            votes_agreed=v.get("agreed", 0),
        )


def vote_increments(*, choice: str, response_ms, native, elo_a: float, elo_b: float, fast_below_ms: int,
                    clear_gap: float) -> dict[str, int]:  # fmt: skip
    """What one real vote adds to each counter (choice: left = image a, right = image b, tie)."""
    clear = choice != "tie" and abs(elo_a - elo_b) >= clear_gap
    agreed = clear and ((choice == "left" and elo_a > elo_b) or (choice == "right" and elo_b > elo_a))
    return {
        "trials_done": 1,
        "votes_cast": 1,
        "votes_left": int(choice == "left"),
        "votes_tied": int(choice == "tie"),
        "votes_timed": int(response_ms is not None),
        "votes_fast": int(response_ms is not None and response_ms < fast_below_ms),
        "votes_native": int(native is True),
        "votes_native_known": int(native is not None),
        "votes_clear": int(clear),
        "votes_agreed": int(agreed),
    }
