"""Rater quality control: flags from a rater's votes (no Django here).

Thresholds are per study; defaults follow ITU-T P.808 / P.910 crowdsourcing
practice and the pairwise-vote cleaning of LMSYS's arena (see SPEC §2):

* side bias: one side chosen in more than 80% of at least 20 trials;
* fast votes: more than a share of votes sooner than 0.5 s after both images
  loaded;
* low agreement with the consensus: on clear pairs (a gap of at least
  ``min_gap`` between the two images' ratings when the rater voted, 100 Elo points = a 64%
  preference) the rater picks the higher-rated image less often than ``min_agreement``. The
  consensus is the study's Elo at the time of each vote (kept as counters on the rater's
  row, so QC costs the same at any study size); with many raters one rater's own votes
  hardly move it.
* a failed gold pair (recorded by the vote service) voids the session;
* viewing conditions (issue 16): more than ``max_non_native_share`` of the votes
  made while the images were not shown one image pixel per device pixel, or,
  with screen calibration, fewer device pixels per degree of visual angle than
  ``min_px_per_degree`` (images too small to see their detail at that distance).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Thresholds:
    min_trials: int = 20
    side_bias: float = 0.8
    min_response_ms: int = 500
    max_fast_share: float = 0.2
    min_agreement: float = 0.6
    min_gap: float = 100.0
    max_non_native_share: float = 0.0
    min_px_per_degree: float = 0.0  # 0: no rule
    sided: bool = True  # pairwise protocols: a rater can favour a side (not so when rating one image)


@dataclass(frozen=True)
class Vote:
    chose_left: bool
    response_ms: int | None
    winner_mos: float
    loser_mos: float
    native: bool | None = None  # as the rating page reported it; None: not reported


@dataclass(frozen=True)
class Viewing:
    """What the rater's viewing reports say (the calibrated pixels per degree, if measured)."""

    px_per_degree: float | None = None


@dataclass(frozen=True)
class RaterQuality:
    trials: int
    left_share: float
    fast_share: float
    clear_pairs: int
    agreement: float | None
    gold_failed: int
    non_native_share: float | None = None
    px_per_degree: float | None = None
    flags: list[str] = field(default_factory=list)

    @property
    def flagged(self) -> bool:
        return bool(self.flags)


@dataclass(frozen=True)
class Counts:
    """What QC needs of a rater's votes, as counters (the rater's row keeps them: rater_counts)."""

    votes: int = 0  # real votes
    left: int = 0
    tied: int = 0
    timed: int = 0
    fast: int = 0
    clear: int = 0  # votes on clear pairs (consensus gap at least min_gap)
    agreed: int = 0  # of those, for the image the consensus rated higher
    native: int = 0
    native_known: int = 0

    @classmethod
    def of_votes(cls, votes: Sequence[Vote], thresholds: Thresholds) -> Counts:
        timed = [v.response_ms for v in votes if v.response_ms is not None]
        clear = [v for v in votes if abs(v.winner_mos - v.loser_mos) >= thresholds.min_gap]
        reported = [v.native for v in votes if v.native is not None]
        return cls(
            votes=len(votes),
            left=sum(v.chose_left for v in votes),
            timed=len(timed),
            fast=sum(ms < thresholds.min_response_ms for ms in timed),
            clear=len(clear),
            agreed=sum(v.winner_mos > v.loser_mos for v in clear),
            native=sum(reported),
            native_known=len(reported),
        )


def assess(
    votes: Sequence[Vote], *, gold_failed: int, thresholds: Thresholds, viewing: Viewing = Viewing()
) -> RaterQuality:
    return assess_counts(Counts.of_votes(votes, thresholds), gold_failed=gold_failed, thresholds=thresholds,
                         viewing=viewing)  # fmt: skip


def assess_counts(
    counts: Counts, *, gold_failed: int, thresholds: Thresholds, viewing: Viewing = Viewing()
) -> RaterQuality:
    """The QC figures and flags from a rater's counters: the same whatever the number of votes."""
    trials = counts.votes - counts.tied  # a tie chooses no side and agrees with no order
    left_share = counts.left / trials if trials else 0.0
    fast_share = counts.fast / counts.timed if counts.timed else 0.0
    agreement = counts.agreed / counts.clear if counts.clear else None
    non_native = 1 - counts.native / counts.native_known if counts.native_known else None

    flags = []
    if gold_failed:
        flags.append("failed gold pair")
    # Viewing rules hold from the first vote: one blurred comparison is already a wrong datum.
    if non_native is not None and non_native > thresholds.max_non_native_share:
        flags.append(f"{non_native:.0%} of votes on images not shown at native size")
    ppd = viewing.px_per_degree
    if thresholds.min_px_per_degree and ppd is not None and ppd < thresholds.min_px_per_degree:
        flags.append(f"{ppd:.0f} pixels per degree, under {thresholds.min_px_per_degree:g}")
    if trials >= thresholds.min_trials:
        if thresholds.sided and max(left_share, 1 - left_share) > thresholds.side_bias:
            flags.append(f"one side in {max(left_share, 1 - left_share):.0%} of trials")
        if fast_share > thresholds.max_fast_share:
            flags.append(f"{fast_share:.0%} of votes faster than {thresholds.min_response_ms} ms")
        if (
            agreement is not None
            and counts.clear >= thresholds.min_trials // 2
            and agreement < thresholds.min_agreement
        ):
            flags.append(f"agrees with the consensus on {agreement:.0%} of clear pairs")
    return RaterQuality(
        trials=trials,
        left_share=left_share,
        fast_share=fast_share,
        clear_pairs=counts.clear,
        agreement=agreement,
        gold_failed=gold_failed,
        non_native_share=non_native,
        px_per_degree=ppd,
        flags=flags,
    )
