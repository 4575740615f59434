"""The reference path of bench/vote_load.py: the same two requests (a pair; a vote with the next
pair) as a minimal hand-written Django view, served by the same gunicorn as the app. Kept here,
never in the app: it is the floor a well-written Django view on this database reaches.

Raw SQL through ``connection.cursor()``, no DRF, no serializers, about 3 statements for a pair
and 4 for a vote, with the app's invariants: one transaction, row locks in id order, an
append-only log with both images' Elo before and after, zero-sum Elo (PIPAL Eq. 1–2), a
single-use assignment, never the same pair twice for a rater (the table's unique constraint).
It leaves out what the app adds on top: practice and gold pairs, quotas and rate limits,
counters, viewing conditions, stimuli URLs, the error shape.

Served when gunicorn runs with ``DJANGO_SETTINGS_MODULE=vote_reference_settings`` and ``bench/`` on
the path (production's settings, with this module as the URLconf: these two routes, then the app's).
"""

import hashlib
import json
import random
import secrets
from datetime import timedelta

from django.db import connection, transaction
from django.http import HttpResponse, JsonResponse
from django.urls import include, path
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

M, K = 400.0, 16.0


def _rater(request):
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header.startswith("Bearer "):
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, study_id FROM annotation_rater WHERE token_hash = %s",
            [hashlib.sha256(header[7:].encode()).hexdigest()],
        )
        return cursor.fetchone()


def _pair(cursor, rater_id: int, study_id: int):
    """Statement 1: a least-judged image and a partner of its reference this rater has not had
    with it; statement 2: the assignment."""
    cursor.execute(
        "SELECT f.id, f.reference_id, p.id FROM (SELECT id, reference_id FROM annotation_distortedimage "
        "WHERE study_id = %s ORDER BY judgment_count, shuffle_key LIMIT 16) f "
        "JOIN LATERAL (SELECT id FROM annotation_distortedimage d WHERE d.reference_id = f.reference_id "
        "AND d.id <> f.id AND NOT EXISTS (SELECT 1 FROM annotation_assignment a WHERE a.rater_id = %s "
        "AND a.image_low_id = LEAST(d.id, f.id) AND a.image_high_id = GREATEST(d.id, f.id)) "
        "ORDER BY d.judgment_count, d.shuffle_key LIMIT 4) p ON true",
        [study_id, rater_id],
    )
    rows = cursor.fetchall()
    if not rows:
        return None
    first, reference, partner = random.choice(rows)
    left, right = (first, partner) if random.random() < 0.5 else (partner, first)
    token = secrets.token_urlsafe(24)
    now = timezone.now()
    cursor.execute(
        "INSERT INTO annotation_assignment (study_id, rater_id, token, reference_id, left_id, right_id, "
        "image_low_id, image_high_id, status, issued_at, expires_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'open', %s, %s)",
        [study_id, rater_id, token, reference, left, right, min(left, right), max(left, right), now,
         now + timedelta(minutes=30)],
    )  # fmt: skip
    return {"assignment": token, "left": left, "right": right}


def next_pair(request, slug):
    rater = _rater(request)
    if rater is None:
        return HttpResponse(status=401)
    with transaction.atomic(), connection.cursor() as cursor:
        pair = _pair(cursor, *rater)
    return JsonResponse(pair) if pair else HttpResponse(status=204)


@csrf_exempt
def vote(request, slug):
    rater = _rater(request)
    if rater is None:
        return HttpResponse(status=401)
    body = json.loads(request.body)
    a_wins = body["choice"] == "left"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(  # 1: claim the assignment (single use)
            "UPDATE annotation_assignment SET status = 'voted' WHERE token = %s AND rater_id = %s "
            "AND status = 'open' AND expires_at > now() RETURNING id, left_id, right_id, issued_at",
            [body["assignment"], rater[0]],
        )
        claimed = cursor.fetchone()
        if claimed is None:
            return JsonResponse({"error": "not an open assignment of yours"}, status=409)
        assignment, left, right, issued = claimed
        cursor.execute(  # 2: both images, locked in id order
            "SELECT id, elo, judgment_count, recent_elo FROM annotation_distortedimage WHERE id IN (%s, %s) "
            "ORDER BY id FOR NO KEY UPDATE",
            [left, right],
        )
        images = {row[0]: row for row in cursor.fetchall()}
        ra, rb = images[left][1], images[right][1]
        delta = K * ((1.0 if a_wins else 0.0) - 1.0 / (1.0 + 10.0 ** ((rb - ra) / M)))
        new = {left: ra + delta, right: rb - delta}
        recent = {image: (json.loads(row[3]) if isinstance(row[3], str) else row[3])[-9:] + [new[image]]
                  for image, row in images.items()}  # fmt: skip
        cursor.execute(  # 3: both ratings, counts and MOS
            "UPDATE annotation_distortedimage SET judgment_count = judgment_count + 1, "
            "elo = CASE WHEN id = %s THEN %s ELSE %s END, "
            "recent_elo = CASE WHEN id = %s THEN %s::jsonb ELSE %s::jsonb END, "
            "mos = CASE WHEN id = %s THEN %s ELSE %s END WHERE id IN (%s, %s)",
            [left, new[left], new[right], left, json.dumps(recent[left]), json.dumps(recent[right]),
             left, sum(recent[left]) / len(recent[left]), sum(recent[right]) / len(recent[right]), left, right],
        )  # fmt: skip
        cursor.execute(  # 4: the log
            "INSERT INTO annotation_judgment (study_id, rater_id, assignment_id, image_a_id, image_b_id, winner_id, "
            "tie, elo_a_before, elo_a_after, elo_b_before, elo_b_after, response_ms, source, issued_at, created_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, false, %s, %s, %s, %s, %s, 'live', %s, now())",
            [rater[1], rater[0], assignment, left, right, left if a_wins else right, ra, new[left], rb, new[right],
             body.get("response_ms"), issued],
        )  # fmt: skip
        following = _pair(cursor, *rater)
    return JsonResponse({"next": following}, status=201)


urlpatterns = [
    path("reference/studies/<slug:slug>/pairs/next/", next_pair),
    path("reference/studies/<slug:slug>/votes/", vote),
    path("", include("pipal_site.urls")),
]
