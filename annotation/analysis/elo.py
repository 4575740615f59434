"""Elo rating for pairwise judgments, as PIPAL defines it (no Django here).

PIPAL (Gu et al., ECCV 2020, Sec. 3.3 "Elo Rating for Mean Opinion Score"):

* Eq. 1: P(A>B) = 1 / (1 + 10 ** ((R_B - R_A) / M))
* Eq. 2: R'_A = R_A + K * (S_A - P(A>B)),  R'_B = R_B + K * (S_B - P(B>A))

with M = 400, K = 16 and every image starting at 1400. Because
S_A + S_B = 1 and P(A>B) + P(B>A) = 1 the update is zero-sum: we apply the
same delta with opposite signs, so a study's rating sum is invariant up to
floating-point rounding. The MOS of an image is "the average of the Elo scores
in the last few steps": the mean of its last ``window`` post-judgment ratings.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

# PIPAL Sec. 3.3 defaults.
DEFAULT_M = 400.0
DEFAULT_K = 16.0
DEFAULT_INITIAL = 1400.0
DEFAULT_MOS_WINDOW = 10


@dataclass(frozen=True)
class EloParams:
    m: float = DEFAULT_M
    k: float = DEFAULT_K
    initial: float = DEFAULT_INITIAL
    mos_window: int = DEFAULT_MOS_WINDOW

    def __post_init__(self) -> None:
        if self.m <= 0:
            raise ValueError(f"Elo M must be positive, got {self.m}")
        if self.k <= 0:
            raise ValueError(f"Elo K must be positive, got {self.k}")
        if self.mos_window < 1:
            raise ValueError(f"MOS window must be at least 1, got {self.mos_window}")


def win_probability(r_a: float, r_b: float, m: float = DEFAULT_M) -> float:
    """P(A preferred over B), PIPAL Eq. 1."""
    return 1.0 / (1.0 + 10.0 ** ((r_b - r_a) / m))


def update(
    r_a: float, r_b: float, a_score: float, *, k: float = DEFAULT_K, m: float = DEFAULT_M
) -> tuple[float, float]:
    """New ratings of A and B after one judgment, PIPAL Eq. 2; ``a_score`` is S_A: 1 (or True)
    when A won, 0 (False) when B won, 0.5 for a tie."""
    delta = k * (float(a_score) - win_probability(r_a, r_b, m))
    return r_a + delta, r_b - delta


def push_recent(recent: list[float], rating: float, window: int) -> list[float]:
    """The last ``window`` ratings after appending ``rating``."""
    return [*recent, rating][-window:]


def mos(recent: Iterable[float], initial: float = DEFAULT_INITIAL) -> float:
    """Mean of the last few Elo values; an unjudged image keeps its initial rating."""
    values = list(recent)
    return sum(values) / len(values) if values else initial


@dataclass
class RatingState:
    """One image's rating history, enough to continue the Elo chain."""

    elo: float
    judgments: int = 0
    recent: list[float] = field(default_factory=list)

    def mos(self, initial: float) -> float:
        return mos(self.recent, initial)


@dataclass(frozen=True)
class Step:
    """One applied judgment: both images' ratings before and after."""

    image_a: Hashable
    image_b: Hashable
    a_score: float  # S_A: 1.0, 0.0, or 0.5 for a tie
    a_before: float
    a_after: float
    b_before: float
    b_after: float


def initial_states(
    images: Iterable[Hashable], params: EloParams, start: Mapping[Hashable, RatingState] | None = None
) -> dict[Hashable, RatingState]:
    """Each image's state from ``start`` when given, else fresh at ``params.initial``."""
    start = start or {}
    return {
        image: RatingState(s.elo, s.judgments, list(s.recent))
        if (s := start.get(image))
        else RatingState(params.initial)
        for image in images
    }


def apply(
    states: dict[Hashable, RatingState], judgments: Iterable[tuple[Hashable, Hashable, float]], params: EloParams
) -> Iterator[Step]:
    """Apply judgments ``(image_a, image_b, a_score)`` in order (S_A: 1, 0, or 0.5 for a tie), updating
    ``states`` in place and yielding each step.

    The live vote, the file replay and recompute_mos all go through here, so a
    replay of the log reproduces live ratings bit for bit.
    """
    for image_a, image_b, a_score in judgments:
        a, b = states[image_a], states[image_b]
        a_before, b_before = a.elo, b.elo
        a.elo, b.elo = update(a_before, b_before, a_score, k=params.k, m=params.m)
        for state in (a, b):
            state.judgments += 1
            state.recent = push_recent(state.recent, state.elo, params.mos_window)
        yield Step(image_a, image_b, float(a_score), a_before, a.elo, b_before, b.elo)


def replay(
    judgments: Iterable[tuple[Hashable, Hashable, float]],
    images: Iterable[Hashable],
    params: EloParams,
    start: Mapping[Hashable, RatingState] | None = None,
) -> dict[Hashable, RatingState]:
    """Final states after applying ``judgments`` to ``images`` (see :func:`apply`)."""
    states = initial_states(images, params, start)
    for _ in apply(states, judgments, params):
        pass
    return states
