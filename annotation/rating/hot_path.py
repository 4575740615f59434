"""The vote path in SQL: the two requests every rater makes all the time, at the database's pace.

A profile of one vote through the ORM spent 60% of its time building and compiling queries
and issued 31 statements (issue 22). Here each request is a few hand-written statements:

* authentication and the study: one narrow query (``rater_for_token``, ``rater_for_session``);
* a trial (``issue``): lock the rater and find an open trial in one statement, choose the pair
  in two (the head of the least-judged queue with its open assignments, then a partner the
  rater has not had), insert it;
* a vote with the next trial (``vote``): claim the assignment with ``UPDATE … RETURNING`` (it
  is single-use), rate limit and counters on the rater row in one ``UPDATE … RETURNING``, lock
  both images in id order, update both in one statement, append the judgment; then the next
  pair as above, in the same transaction (the rater's row lock makes a second open trial
  impossible, so no lookup is needed).

Everything else — practice and gold pairs, the active pair policy, refusals and their
reasons, stimuli not yet prepared — goes the ORM way in ``trials`` and ``votes``: these functions return
``SLOW`` and change nothing. The invariants are the ORM path's: one transaction, locks in the
order rater, assignment, images by id (``FOR NO KEY UPDATE`` on PostgreSQL; SQLite's IMMEDIATE
transactions serialise writers), zero-sum Elo through ``elo.apply``, the append-only log, a
pair never twice for a rater (its unique constraint). Tested on SQLite and PostgreSQL alike
(tests/annotation/test_hot_path.py, tests/annotation/test_concurrency.py).
"""

from __future__ import annotations

import json
import random
import secrets
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from annotation.analysis import elo, rater_counts
from annotation.models import Assignment, Judgment, Rater, Study
from annotation.rating.issued import Candidate, IssuedTrial, gold_slot, opaque_id

SLOW = object()  # "take the ORM path": nothing was changed
FIRST_POOL = 16  # as scheduler.FIRST_POOL: the head of the least-judged queue drawn from
PARTNER_POOL = 8  # as scheduler.PARTNER_POOL

# Study fields read with the rater in one statement (Model.from_db takes the raw values: no JSON
# field here, it would stay undecoded text; the scale loads on first use).
RATER_WANTED = {"id", "study_id", "excluded", "finished_at", "trials_done", "practice_done", "last_vote_at"}
STUDY_WANTED = {
    "id", "slug", "name", "trials_per_rater", "training_trials", "gold_every", "min_vote_interval_ms",
    "min_response_ms", "agreement_min_gap", "allow_ties", "elo_m", "elo_k", "elo_initial", "mos_window", "mos_source",
    "pair_policy", "protocol", "rank_k", "zoom_patch",
}  # fmt: skip


def _in_model_order(model, wanted: set[str]) -> tuple[str, ...]:
    """Model.from_db takes the values in the order of the model's fields."""
    return tuple(field.attname for field in model._meta.concrete_fields if field.attname in wanted)


RATER_FIELDS = _in_model_order(Rater, RATER_WANTED)
STUDY_FIELDS = _in_model_order(Study, STUDY_WANTED)
_SELECT_RATER = (
    "SELECT "
    + ", ".join(f"r.{name}" for name in RATER_FIELDS)
    + ", "
    + ", ".join(f"s.{name}" for name in STUDY_FIELDS)
    + " FROM annotation_rater r JOIN annotation_study s ON s.id = r.study_id WHERE "
)


def _postgres() -> bool:
    return connection.vendor == "postgresql"


def _lock(clause: str) -> str:
    """A row lock on PostgreSQL; SQLite's IMMEDIATE transaction already holds the write lock."""
    return f" {clause}" if _postgres() else ""


def _db_time(value: datetime):
    return connection.ops.adapt_datetimefield_value(value)


def _aware(value) -> datetime | None:
    """A datetime read by a raw cursor (SQLite returns text) as an aware UTC datetime."""
    if value is None or isinstance(value, datetime):
        return value if value is None or timezone.is_aware(value) else value.replace(tzinfo=UTC)
    parsed = parse_datetime(value)
    return parsed if timezone.is_aware(parsed) else parsed.replace(tzinfo=UTC)


def _json(value) -> list:
    return json.loads(value) if isinstance(value, str) else value


def _json_param(value: list) -> str:
    return json.dumps(value)


def _jsonb(placeholder: str = "%s") -> str:
    return f"{placeholder}::jsonb" if _postgres() else placeholder


# --- authentication: the rater and the study in one narrow query -----------------------------


def _rater_from_row(row) -> Rater:
    rater = Rater.from_db(connection.alias, RATER_FIELDS, row[: len(RATER_FIELDS)])
    study = Study.from_db(connection.alias, STUDY_FIELDS, row[len(RATER_FIELDS) :])
    rater.study = study  # the foreign key's cache: no query when the view asks for it
    return rater


def _one(sql: str, params) -> tuple | None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def rater_for_token(token_hash: str) -> Rater | None:
    row = _one(_SELECT_RATER + "r.token_hash = %s", [token_hash])
    return _rater_from_row(row) if row else None


def rater_for_session(rater_id: int, slug: str) -> Rater | None:
    row = _one(_SELECT_RATER + "r.id = %s AND s.slug = %s", [rater_id, slug])
    return _rater_from_row(row) if row else None


# --- issuing a trial ------------------------------------------------------------------------------


# The study's open assignments, read once per statement from a small partial index (one open
# trial per rater at most) and counted per image: a candidate's load is its judgments plus these.
_OPEN_PAIRS = (
    "WITH open_load AS MATERIALIZED (SELECT image, count(*) AS n FROM (SELECT left_id AS image "
    "FROM annotation_assignment WHERE study_id = %s AND status = 'open' AND expires_at > %s UNION ALL "
    "SELECT right_id FROM annotation_assignment WHERE study_id = %s AND status = 'open' AND expires_at > %s) o "
    "GROUP BY image) "
)
_LOAD = "d.judgment_count + COALESCE((SELECT n FROM open_load WHERE image = d.id), 0)"


def _open_pairs() -> str:
    # SQLite has no MATERIALIZED hint before 3.35 and plans its CTEs itself.
    return _OPEN_PAIRS if _postgres() else _OPEN_PAIRS.replace(" MATERIALIZED", "")


def _open_params(study_id: int, now) -> list:
    return [study_id, _db_time(now), study_id, _db_time(now)]


def _head(study_id: int, offset: int, now) -> list[tuple]:
    """(id, reference id, load, display, reference display) of the least-judged images, load =
    judgments + open assignments (so concurrent raters spread out), as scheduler.least_judged."""
    sql = (
        _open_pairs()
        + f"SELECT d.id, d.reference_id, {_LOAD}, d.display, ref.display FROM (SELECT id, reference_id, "
        "judgment_count, shuffle_key, display FROM annotation_distortedimage WHERE study_id = %s "
        "ORDER BY judgment_count, shuffle_key LIMIT %s OFFSET %s) d "
        "JOIN annotation_referenceimage ref ON ref.id = d.reference_id "
        # A join keeps no order: without this the rows' random tie-breaks depended on PostgreSQL's plan.
        "ORDER BY d.judgment_count, d.shuffle_key"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*_open_params(study_id, now), study_id, FIRST_POOL, offset])
        return cursor.fetchall()


def _partners(study_id: int, rater_id: int, reference_id: int, image_id: int, now) -> list[tuple]:
    """(id, load, display) of the least-judged images of the reference that this rater has not
    had with ``image_id``, as scheduler.least_judged_partner."""
    sql = (
        _open_pairs()
        + f"SELECT d.id, {_LOAD}, d.display FROM (SELECT id, judgment_count, shuffle_key, display "
        "FROM annotation_distortedimage WHERE reference_id = %s AND id <> %s AND id NOT IN ("
        "SELECT image_high_id FROM annotation_assignment WHERE rater_id = %s AND image_low_id = %s "
        "UNION ALL SELECT image_low_id FROM annotation_assignment WHERE rater_id = %s AND image_high_id = %s) "
        "ORDER BY judgment_count, shuffle_key LIMIT %s) d ORDER BY d.judgment_count, d.shuffle_key"
    )
    params = [*_open_params(study_id, now), reference_id, image_id, rater_id, image_id, rater_id, image_id]
    params.append(PARTNER_POOL)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _choose_and_insert(study: Study, rater: Rater, rng: random.Random, now, progress_done: int):
    """The balanced scheduler (scheduler.md) over SQL, then the assignment's INSERT: an
    IssuedTrial, None when the rater has had every pair, or SLOW (a stimulus not prepared)."""

    offset = 0
    while head := _head(study.id, offset, now):
        # One statement for the head, one for the partners of the first image that has any (a
        # LATERAL join of both cost more database time than the second round trip).
        for image_id, reference_id, _, display, reference_display in sorted(
            head, key=lambda row: (row[2], rng.random())
        ):
            partners = _partners(study.id, rater.id, reference_id, image_id, now)
            if not partners:
                continue
            fewest = min(load for _, load, _ in partners)
            partner_id, _, partner_display = rng.choice([row for row in partners if row[1] == fewest])
            if not (display and partner_display and reference_display):
                return SLOW  # an older study: trials makes the display copies
            first, second = (image_id, display), (partner_id, partner_display)
            (left_id, left_display), (right_id, right_display) = (
                (first, second) if rng.random() < 0.5 else (second, first)
            )
            token = secrets.token_urlsafe(24)
            expires = now + timedelta(seconds=settings.PIPAL_ASSIGNMENT_TTL_SECONDS)
            # ON CONFLICT rather than a savepoint (two more round trips on every pair): the pair's
            # unique constraint (never twice for a rater) leaves the transaction usable.
            inserted = _one(
                "INSERT INTO annotation_assignment (study_id, rater_id, token, reference_id, left_id, right_id, "
                "image_low_id, image_high_id, status, issued_at, expires_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'open', %s, %s) ON CONFLICT DO NOTHING RETURNING id",
                [
                    study.id, rater.id, token, reference_id, left_id, right_id, min(left_id, right_id),
                    max(left_id, right_id), _db_time(now), _db_time(expires),
                ],
            )  # fmt: skip
            if inserted is None:
                return SLOW  # a concurrent request of this rater took the pair first: the ORM path retries
            (assignment_id,) = inserted
            assignment = Assignment(
                id=assignment_id, study_id=study.id, rater_id=rater.id, token=token, reference_id=reference_id,
                left_id=left_id, right_id=right_id, image_low_id=min(left_id, right_id),
                image_high_id=max(left_id, right_id), status=Assignment.Status.OPEN, issued_at=now, expires_at=expires,
            )  # fmt: skip
            return IssuedTrial(
                token=token,
                phase="rating",
                reference=Candidate(opaque_id(token, "reference"), reference_display),
                left=Candidate(opaque_id(token, "left"), left_display),
                right=Candidate(opaque_id(token, "right"), right_display),
                expires_at=expires,
                done=progress_done,
                quota=study.trials_per_rater,
                allow_tie=study.allow_ties,
                assignment=assignment,
            )
        offset += FIRST_POOL
    return None


def _gold_due(study: Study, rater: Rater, done: int) -> bool:
    return bool(study.gold_every) and done % study.gold_every == gold_slot(rater, study.gold_every)


def _plain(study: Study) -> bool:
    """A study the SQL path serves: votes, the balanced policy."""
    return study.mos_source == Study.MosSource.ELO and study.pair_policy == Study.PairPolicy.BALANCED


def issue(*, study: Study, rater: Rater, rng: random.Random):
    """pair_next's common case inside the caller's transaction: the rater's open real pair again,
    or a new real pair; SLOW for anything else (practice, gold, an open control trial, …)."""
    if not _plain(study) or rater.study_id != study.id:
        return SLOW

    now = timezone.now()
    row = _one(
        "SELECT r.excluded, r.trials_done, r.practice_done, a.id, a.token, a.expires_at, a.reference_id, "
        "a.left_id, a.right_id, a.issued_at, ref.display, l.display, rt.display, c.id "
        "FROM annotation_rater r "
        "LEFT JOIN annotation_assignment a ON a.rater_id = r.id AND a.status = 'open' AND a.expires_at > %s "
        "LEFT JOIN annotation_referenceimage ref ON ref.id = a.reference_id "
        "LEFT JOIN annotation_distortedimage l ON l.id = a.left_id "
        "LEFT JOIN annotation_distortedimage rt ON rt.id = a.right_id "
        "LEFT JOIN annotation_controltrial c ON c.rater_id = r.id AND c.status = 'open' AND c.expires_at > %s "
        "WHERE r.id = %s" + _lock("FOR NO KEY UPDATE OF r"),
        [_db_time(now), _db_time(now), rater.id],
    )
    if row is None:
        return SLOW
    excluded, done, practice, assignment_id, token, expires, reference_id, left_id, right_id, issued = row[:10]
    displays, control_id = row[10:13], row[13]
    if excluded or control_id is not None or done >= study.trials_per_rater:
        return SLOW
    if assignment_id is not None:
        if not all(displays):
            return SLOW
        expires, issued = _aware(expires), _aware(issued)
        assignment = Assignment(
            id=assignment_id, study_id=study.id, rater_id=rater.id, token=token, reference_id=reference_id,
            left_id=left_id, right_id=right_id, status=Assignment.Status.OPEN, issued_at=issued, expires_at=expires,
        )  # fmt: skip
        return IssuedTrial(
            token=token,
            phase="rating",
            reference=Candidate(opaque_id(token, "reference"), displays[0]),
            left=Candidate(opaque_id(token, "left"), displays[1]),
            right=Candidate(opaque_id(token, "right"), displays[2]),
            expires_at=expires,
            done=done,
            quota=study.trials_per_rater,
            allow_tie=study.allow_ties,
            assignment=assignment,
        )
    if practice < study.training_trials or _gold_due(study, rater, done):
        return SLOW
    trial = _choose_and_insert(study, rater, rng, now, done)
    return SLOW if trial is None else trial  # every pair seen: trials finishes the rater


# --- recording a vote ---------------------------------------------------------------------------


class Fallback(Exception):
    """Undo this transaction's changes and take the ORM path (which says why it refuses)."""


def vote(
    *, study: Study, rater: Rater, token: str, choice: str, response_ms: int, seen, rng: random.Random, issue_next=True
):
    """vote_submit's common case: a vote on the rater's open real pair by a rater who is not voting
    too fast, and the next real pair, in one transaction (the caller's). Returns (judgment, done,
    next trial or None when the next trial must come from pair_next's ORM path), or SLOW when
    nothing was changed: control trials, refusals, a tie where the study is forced choice."""
    if not _plain(study) or choice not in ("left", "right", "tie") or (choice == "tie" and not study.allow_ties):
        return SLOW
    # A Fallback raised here leaves through the caller's transaction, which undoes the claim and the
    # counters (votes then takes the ORM path); no savepoint, which costs two round trips.
    done, judgment = _vote_in_transaction(study, rater, token, choice, response_ms, seen)
    following = None
    if issue_next and done < study.trials_per_rater and not _next_is_slow(study, rater, done):
        following = _choose_and_insert(study, rater, rng, timezone.now(), done)
        if following is SLOW:
            following = None
    return judgment, done, following


def _next_is_slow(study: Study, rater: Rater, done: int) -> bool:
    return rater.practice_done < study.training_trials or _gold_due(study, rater, done)


_CLAIM = (
    "UPDATE annotation_assignment SET status = 'voted' WHERE token = %s AND rater_id = %s AND study_id = %s "
    "AND status = 'open' AND expires_at > %s RETURNING id, left_id, right_id, issued_at"
)
_COUNT = (
    "UPDATE annotation_rater SET last_vote_at = %s, trials_done = trials_done + 1, votes_cast = votes_cast + 1, "
    "votes_left = votes_left + %s, votes_tied = votes_tied + %s, votes_timed = votes_timed + 1, "
    "votes_fast = votes_fast + %s, votes_native = votes_native + %s, votes_native_known = votes_native_known + %s, "
    "votes_clear = votes_clear + %s, votes_agreed = votes_agreed + %s "
    "WHERE id = %s AND excluded = %s AND (last_vote_at IS NULL OR last_vote_at <= %s){claimed} "
    "RETURNING trials_done, (SELECT count(*) FROM annotation_viewingreport v WHERE v.id = %s AND v.rater_id = %s)"
)
_IMAGES = "SELECT {columns} FROM annotation_distortedimage d WHERE d.id IN ({ids}) ORDER BY d.id"
_IMAGE_COLUMNS = "d.id, d.study_id, d.reference_id, d.elo, d.judgment_count, d.recent_elo"


def _claim_count_lock(study, rater, token, choice, response_ms, seen, now) -> tuple[tuple, int, dict]:
    """Claim the assignment, count the vote on the rater's row (rate limit, counters, viewing
    report), lock both images in id order: in this order, and on PostgreSQL in one statement
    (data-modifying CTEs, then the images locked as the sort returns them)."""
    def count_params(clear: int, agreed: int) -> list:
        return [
            _db_time(now), int(choice == "left"), int(choice == "tie"), int(response_ms < study.min_response_ms),
            int(seen.native is True), int(seen.native is not None), clear, agreed, rater.id, False,
            _db_time(now - timedelta(milliseconds=study.min_vote_interval_ms)), seen.viewing_id, rater.id,
        ]  # fmt: skip

    claim_params = [token, rater.id, study.id, _db_time(now)]
    if _postgres():
        with connection.cursor() as cursor:
            cursor.execute(
                f"WITH claimed AS ({_CLAIM}), counted AS ("
                + _COUNT.format(claimed=" AND EXISTS (SELECT 1 FROM claimed)")
                + ") SELECT c.id, c.left_id, c.right_id, c.issued_at, n.trials_done, n.count, "
                + _IMAGE_COLUMNS
                + " FROM claimed c JOIN counted n ON true JOIN annotation_distortedimage d "
                "ON d.id IN (c.left_id, c.right_id) ORDER BY d.id FOR NO KEY UPDATE OF d",
                claim_params + count_params(0, 0),  # agreement is counted with the ratings (it needs them)
            )
            rows = cursor.fetchall()
        if len(rows) != 2:
            raise Fallback  # not claimed (a control trial, a refusal) or not counted (too fast, excluded)
        claimed, counted = rows[0][:4], rows[0][4:6]
        images = {row[6]: row[6:] for row in rows}
    else:
        # SQLite's IMMEDIATE transaction holds the database's write lock: the images can be read
        # first, so the agreement counters go with the others.
        claimed = _one(_CLAIM, claim_params)
        if claimed is None:
            raise Fallback
        with connection.cursor() as cursor:
            cursor.execute(_IMAGES.format(columns=_IMAGE_COLUMNS, ids="%s, %s"), [claimed[1], claimed[2]])
            images = {row[0]: row for row in cursor.fetchall()}
        elo_left, elo_right = images[claimed[1]][3], images[claimed[2]][3]
        clear, agreed = _agreement(choice, elo_left, elo_right, study)
        counted = _one(_COUNT.format(claimed=""), count_params(int(clear), int(agreed)))
        if counted is None:
            raise Fallback
    if seen.viewing_id is not None and not counted[1]:
        raise Fallback  # someone else's viewing report: the ORM path says so
    return claimed, counted[0], images


def _agreement(choice: str, elo_left: float, elo_right: float, study: Study) -> tuple[bool, bool]:
    """Agreement with the consensus (rater_counts): on a clear pair — the Elo gap before the vote at
    least the study's agreement_min_gap — did the rater choose the image then rated higher?"""
    counts = rater_counts.vote_increments(
        choice=choice, response_ms=None, native=None, elo_a=elo_left, elo_b=elo_right, fast_below_ms=0,
        clear_gap=study.agreement_min_gap,
    )  # fmt: skip
    return bool(counts["votes_clear"]), bool(counts["votes_agreed"])


def _vote_in_transaction(study, rater, token, choice, response_ms, seen) -> tuple[int, Judgment]:
    now = timezone.now()
    # A Fallback undoes everything: a control trial, or a refusal the ORM path explains.
    (assignment_id, left_id, right_id, issued_at), done, images = _claim_count_lock(
        study, rater, token, choice, response_ms, seen, now
    )
    score = {"left": 1.0, "right": 0.0, "tie": 0.5}[choice]
    native = seen.native
    a, b = images[left_id], images[right_id]
    params = study.elo_params
    states = {row[0]: elo.RatingState(row[3], row[4], list(_json(row[5]))) for row in (a, b)}
    (step,) = elo.apply(states, [(left_id, right_id, score)], params)
    after = {image: (state.elo, state.recent, state.mos(params.initial)) for image, state in states.items()}
    update = (
        "UPDATE annotation_distortedimage SET judgment_count = judgment_count + 1, "
        f"elo = CASE WHEN id = %s THEN %s ELSE %s END, "
        f"recent_elo = CASE WHEN id = %s THEN {_jsonb()} ELSE {_jsonb()} END, "
        "mos = CASE WHEN id = %s THEN %s ELSE %s END WHERE id IN (%s, %s)"
    )
    update_params = [
        left_id, after[left_id][0], after[right_id][0],
        left_id, _json_param(after[left_id][1]), _json_param(after[right_id][1]),
        left_id, after[left_id][2], after[right_id][2],
        left_id, right_id,
    ]  # fmt: skip
    winner = None if score == 0.5 else left_id if score else right_id
    judgment = Judgment(
        study_id=study.id, rater_id=rater.id, assignment_id=assignment_id, image_a_id=left_id, image_b_id=right_id,
        winner_id=winner, tie=score == 0.5, elo_a_before=step.a_before, elo_a_after=step.a_after,
        elo_b_before=step.b_before, elo_b_after=step.b_after, response_ms=response_ms, visible_ms=seen.visible_ms,
        native=native, viewing_id=seen.viewing_id, source=Judgment.Source.LIVE, issued_at=_aware(issued_at),
        created_at=now,
    )  # fmt: skip
    insert = (
        "INSERT INTO annotation_judgment (study_id, rater_id, assignment_id, image_a_id, image_b_id, winner_id, "
        "tie, elo_a_before, elo_a_after, elo_b_before, elo_b_after, response_ms, visible_ms, native, viewing_id, "
        "source, issued_at, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
        "%s, %s) RETURNING id"
    )
    insert_params = [
        study.id, rater.id, assignment_id, left_id, right_id, winner, judgment.tie, step.a_before,
        step.a_after, step.b_before, step.b_after, response_ms, seen.visible_ms, native, seen.viewing_id,
        Judgment.Source.LIVE, _db_time(judgment.issued_at), _db_time(now),
    ]  # fmt: skip
    clear, agreed = _agreement(choice, step.a_before, step.b_before, study)
    agreement = (
        "UPDATE annotation_rater SET votes_clear = votes_clear + %s, votes_agreed = votes_agreed + %s WHERE id = %s"
    )
    agreement_params = [int(clear), int(agreed), rater.id]
    with connection.cursor() as cursor:
        if _postgres():  # the ratings, the agreement counters and the log entry in one statement
            cursor.execute(
                f"WITH rated AS ({update} RETURNING 1), agreed AS ({agreement} RETURNING 1) {insert}",
                update_params + agreement_params + insert_params,
            )
        else:  # (the agreement counters went with the others)
            cursor.execute(update, update_params)
            cursor.execute(insert, insert_params)
        (judgment.id,) = cursor.fetchone()
    rater.trials_done = done
    return done, judgment
