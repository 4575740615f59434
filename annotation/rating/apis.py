"""The rater API: join a study (or resume), fetch the trial, vote, report viewing conditions.

Each endpoint validates with its own input serializer, calls one service and
renders with its own output serializer. Raters never see scores, and a check
pair looks like any other: every picture carries an opaque per-assignment id and
a stimulus URL of the same kind.
"""

from django.core.files.storage import default_storage
from django.http import JsonResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, PolymorphicProxySerializer, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from annotation.models import Rater, Study, ViewingReport
from annotation.raters import rater_join
from annotation.rating import completion, viewing
from annotation.rating.permissions import IsRater
from annotation.rating.stimulus_trials import IssuedStimulusTrial, WrongProtocol, stimulus_next, stimulus_submit
from annotation.rating.trials import pair_next
from annotation.rating.votes import CHOICES, Seen, vote_submit
from core.errors import Forbidden
from core.fields import (
    FieldSet,
    StrictBooleanField,
    StrictCharField,
    StrictChoiceField,
    StrictFloatField,
    StrictIntegerField,
)

ERROR = inline_serializer(
    "Error",
    {"error": inline_serializer("ErrorBody", {"code": serializers.CharField(), "message": serializers.CharField()})},
)


def _study(slug: str) -> Study:
    return get_object_or_404(Study, slug=slug)


def _rated_study(request, slug: str) -> tuple[Study, Rater]:
    """The study of the URL and its rater: the rater's credentials loaded the study with them
    (one query), so only a rater of another study costs a lookup (and a 403)."""
    rater: Rater = request.user
    if rater.study.slug == slug:
        return rater.study, rater
    _study(slug)  # 404 for an unknown study
    raise Forbidden("this rater token belongs to another study")


class RaterJoinApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "rater_join"

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "RaterJoinInput"

        external_id = StrictCharField(
            min_length=1, max_length=200, help_text="Your id, e.g. from the crowdsourcing link (not blank)"
        )

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "RaterJoinOutput"

        rater = serializers.IntegerField()
        token = serializers.CharField(help_text="Send as 'Authorization: Bearer <token>'; shown only once")
        resumed = serializers.BooleanField(help_text="True when this id had joined before: its progress continues")

    @extend_schema(
        request=InputSerializer,
        responses={
            201: OutputSerializer,
            200: OpenApiResponse(
                OutputSerializer, description="Resumed: the id had joined; a new token replaces its old one"
            ),
            400: ERROR,
            404: ERROR,
            409: OpenApiResponse(ERROR, description="The id has taken part and the study allows no resume"),
            429: OpenApiResponse(ERROR, description="Too many joins from this address; retry later"),
        },
        summary="Join a study as a rater, or resume with the same id",
    )
    def post(self, request, slug: str):
        study = _study(slug)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        joined = rater_join(study=study, external_id=data.validated_data["external_id"])
        body = {"rater": joined.rater.id, "token": joined.token, "resumed": joined.resumed}
        return Response(
            self.OutputSerializer(body).data, status=status.HTTP_200_OK if joined.resumed else status.HTTP_201_CREATED
        )


class _PictureSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="Opaque, per assignment: says nothing about the image")
    url = serializers.SerializerMethodField()

    def get_url(self, picture) -> str:
        return self.context["request"].build_absolute_uri(default_storage.url(picture.file))


class _ProgressSerializer(serializers.Serializer):
    done = serializers.IntegerField(help_text="Rated trials so far")
    quota = serializers.IntegerField(help_text="Rated trials asked of this rater")


class TrialSerializer(serializers.Serializer):
    class Meta:
        ref_name = "Trial"

    assignment = serializers.CharField(source="token", help_text="Send back with the vote")
    protocol = serializers.ChoiceField(["pairwise-fr", "pairwise-nr"], help_text="The study's protocol")
    phase = serializers.ChoiceField(["training", "rating"], help_text="training pairs give feedback")
    reference = _PictureSerializer(allow_null=True, help_text="null in a no-reference study (pairwise-nr)")
    left = _PictureSerializer()
    right = _PictureSerializer()
    zoom = inline_serializer(
        "ZoomPatch",
        {"x": serializers.IntegerField(), "y": serializers.IntegerField(), "size": serializers.IntegerField()},
        allow_null=True,
        required=False,
        help_text="pairwise-nr: the square patch (image pixels, top-left corner) of both images to show enlarged",
    )
    expires_at = serializers.DateTimeField()
    allow_tie = serializers.BooleanField(help_text="Whether 'tie' (can't tell) is a valid choice")
    progress = _ProgressSerializer(source="*")


class _CategorySerializer(serializers.Serializer):
    value = serializers.IntegerField()
    label = serializers.CharField()
    key = serializers.CharField(help_text="The keyboard key that picks it (1-9)")


class _ScaleSerializer(serializers.Serializer):
    name = serializers.CharField()
    question = serializers.CharField()
    continuous = serializers.BooleanField(help_text="A slider between the end categories instead of buttons")
    categories = _CategorySerializer(many=True, help_text="Worst first")


class StimulusTrialSerializer(serializers.Serializer):
    class Meta:
        ref_name = "StimulusTrial"

    assignment = serializers.CharField(help_text="Send back with the score or order")
    protocol = serializers.ChoiceField(["acr", "dcr", "rank-k"])
    phase = serializers.ChoiceField(["training", "rating"], help_text="training trials give feedback")
    reference = _PictureSerializer(allow_null=True, help_text="dcr: the reference shown beside the image")
    items = _PictureSerializer(many=True, help_text="acr/dcr: the image to rate; rank-k: the k images to order")
    scale = _ScaleSerializer(allow_null=True, help_text="acr/dcr: the scale to answer on")
    expires_at = serializers.DateTimeField()
    progress = _ProgressSerializer()


ANY_TRIAL = PolymorphicProxySerializer(
    component_name="AnyTrial",
    serializers=[TrialSerializer, StimulusTrialSerializer],
    resource_type_field_name=None,
)


# The hot path renders its two answers by hand: DRF serializers deep-copy their fields on every
# instantiation, which cost more than a vote's SQL (docs/benchmarks.md, issue 22). The serializers
# above stay the documented schema; tests/annotation/test_hot_path.py checks both give the same JSON.
_DATETIME = serializers.DateTimeField()


def trial_body(trial, request, study: Study) -> dict:
    """What TrialSerializer (a pair) or StimulusTrialSerializer gives for ``trial``."""

    def picture(candidate) -> dict:
        return {"id": candidate.id, "url": request.build_absolute_uri(default_storage.url(candidate.file))}

    progress = {"done": trial.done, "quota": trial.quota}
    expires_at = _DATETIME.to_representation(trial.expires_at)
    if isinstance(trial, IssuedStimulusTrial):
        return {
            "assignment": trial.token,
            "protocol": trial.protocol,
            "phase": trial.phase,
            "reference": None if trial.reference is None else picture(trial.reference),
            "items": [picture(item) for item in trial.items],
            "scale": None if trial.scale is None else trial.scale.to_json(),
            "expires_at": expires_at,
            "progress": progress,
        }
    no_reference = study.protocol == Study.Protocol.PAIRWISE_NR
    body = {
        "assignment": trial.token,
        "protocol": study.protocol,
        "phase": trial.phase,
        "reference": None if no_reference else picture(trial.reference),
        "left": picture(trial.left),
        "right": picture(trial.right),
        "expires_at": expires_at,
        "allow_tie": trial.allow_tie,
        "progress": progress,
    }
    if no_reference:
        body["zoom"] = zoom_patch(study, trial)
    return body


def zoom_patch(study: Study, trial) -> dict | None:
    """pairwise-nr: the patch of both images shown enlarged (RankSRGAN's user study zoomed one small
    patch): fixed per trial (from its token), inside the smaller image, None when off or too large."""
    size = study.zoom_patch
    pair = trial.assignment or trial.control
    if not size or pair is None:
        return None
    images = [pair.left, pair.right] if trial.assignment else [pair.reference, pair.reference]
    width, height = min(image.width for image in images), min(image.height for image in images)
    if size > width or size > height:
        return None
    seed = int.from_bytes(trial.token.encode()[:8].ljust(8, b"0"), "little")
    return {"x": seed % (width - size + 1), "y": (seed // 7919) % (height - size + 1), "size": size}


def vote_body(outcome, request, study: Study) -> dict:
    """What VoteApi.OutputSerializer gives for ``outcome``."""
    return {
        "progress": {"done": outcome.done, "quota": outcome.quota},
        "feedback": outcome.feedback,
        "next": None if outcome.next is None else trial_body(outcome.next, request, study),
    }


class PairNextApi(APIView):
    permission_classes = [IsRater]

    @extend_schema(
        responses={
            200: ANY_TRIAL,
            204: OpenApiResponse(description="No trial left for this rater (finished, or screened out)"),
            401: ERROR,
            403: ERROR,
            404: ERROR,
            409: ERROR,
        },
        summary="The rater's trial (a pair, or an acr/dcr/rank-k trial by the study's protocol): the open one "
        "again until it is answered or expires, else a new one",
    )
    def get(self, request, slug: str):
        study, rater = _rated_study(request, slug)
        next_trial = pair_next if study.is_pairwise else stimulus_next
        trial = next_trial(study=study, rater=rater)
        if trial is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return JsonResponse(trial_body(trial, request, study))


class _VoteSeenFields(serializers.Serializer):
    assignment = StrictCharField(min_length=1, max_length=64, help_text="The assignment of the trial")
    response_ms = StrictIntegerField(min_value=0, max_value=24 * 3600 * 1000)
    visible_ms = StrictIntegerField(
        min_value=0, max_value=24 * 3600 * 1000, required=False, help_text="Time the trial was fully visible"
    )
    native = StrictBooleanField(required=False, help_text="Every image shown one image pixel per device pixel")
    viewing = StrictIntegerField(min_value=1, required=False, help_text="Your viewing report in force")


class PairVoteSerializer(_VoteSeenFields):
    class Meta:
        ref_name = "PairVote"

    choice = StrictChoiceField(choices=list(CHOICES), help_text="'tie' (can't tell) only where the trial allows it")


class ScoreVoteSerializer(_VoteSeenFields):
    class Meta:
        ref_name = "ScoreVote"

    score = StrictFloatField(help_text="A value of the study's scale (a category's value, or on a slider any value)")


class OrderVoteSerializer(_VoteSeenFields):
    class Meta:
        ref_name = "OrderVote"

    order = serializers.ListField(
        child=StrictCharField(min_length=1, max_length=64),
        min_length=2,
        max_length=6,
        help_text="The ids of the items shown, best first",
    )


# Which of the three a study takes is its protocol (data, not schema): a pairwise study takes a
# choice, acr/dcr a score, rank-k an order; the other shapes are refused with 400 naming the field.
ANY_VOTE = PolymorphicProxySerializer(
    component_name="AnyVote",
    serializers=[PairVoteSerializer, ScoreVoteSerializer, OrderVoteSerializer],
    resource_type_field_name=None,
)


class VoteApi(APIView):
    permission_classes = [IsRater]

    class InputSerializer(serializers.Serializer):
        """What the vote's fields are checked against (all answer fields optional here); the schema
        documents the three shapes (ANY_VOTE)."""

        class Meta:
            ref_name = "VoteInput"

        assignment = StrictCharField(min_length=1, max_length=64, help_text="The assignment of the trial")
        choice = StrictChoiceField(
            choices=list(CHOICES),
            required=False,
            help_text="Pairwise studies: 'tie' (can't tell) only where the trial allows it",
        )
        score = StrictFloatField(required=False, help_text="acr/dcr: a value of the study's scale")
        order = serializers.ListField(
            child=StrictCharField(min_length=1, max_length=64),
            min_length=2,
            max_length=6,
            required=False,
            help_text="rank-k: the ids of the items shown, best first",
        )
        response_ms = StrictIntegerField(min_value=0, max_value=24 * 3600 * 1000)
        visible_ms = StrictIntegerField(
            min_value=0, max_value=24 * 3600 * 1000, required=False, help_text="Time the pair was fully visible"
        )
        native = StrictBooleanField(required=False, help_text="Every image shown one image pixel per device pixel")
        viewing = StrictIntegerField(min_value=1, required=False, help_text="Your viewing report in force")

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "VoteOutput"

        progress = _ProgressSerializer(source="*")
        feedback = inline_serializer(
            "TrainingFeedback",
            {
                "correct": serializers.BooleanField(),
                "correct_side": serializers.ChoiceField(["left", "right"], required=False, help_text="pairwise"),
                "message": serializers.CharField(),
                "expected_scores": serializers.ListField(
                    child=serializers.FloatField(), required=False, help_text="acr/dcr: the fitting range"
                ),
                "expected_order": serializers.ListField(
                    child=serializers.IntegerField(), required=False, help_text="rank-k: item positions, best first"
                ),
            },
            allow_null=True,
            help_text="Practice pairs only",
        )
        next = PolymorphicProxySerializer(
            component_name="AnyNextTrial",
            serializers=[TrialSerializer, StimulusTrialSerializer],
            resource_type_field_name=None,
            allow_null=True,
            help_text="Your next trial; null when you are done",
        )

    @extend_schema(
        request=ANY_VOTE,
        responses={
            201: OutputSerializer,
            400: ERROR,
            401: ERROR,
            403: ERROR,
            404: ERROR,
            409: ERROR,
            410: ERROR,
            429: ERROR,
        },
        summary="Answer an issued trial (each assignment counts once): a choice (pairwise), a score (acr/dcr) or "
        "an order (rank-k); the answer carries the next trial",
    )
    def post(self, request, slug: str):
        study, rater = _rated_study(request, slug)
        values = VOTE_INPUT.validate(request.data)
        seen = Seen(visible_ms=values.get("visible_ms"), native=values.get("native"), viewing_id=values.get("viewing"))
        _check_vote_shape(study, values)
        if not study.is_pairwise:
            outcome = stimulus_submit(
                study=study,
                rater=rater,
                token=values["assignment"],
                score=values.get("score"),
                order=values.get("order"),
                response_ms=values["response_ms"],
                seen=seen,
            )
            return JsonResponse(vote_body(outcome, request, study), status=status.HTTP_201_CREATED)
        outcome = vote_submit(
            study=study,
            rater=rater,
            assignment_token=values["assignment"],
            choice=values["choice"],
            response_ms=values["response_ms"],
            seen=seen,
        )
        return JsonResponse(vote_body(outcome, request, study), status=status.HTTP_201_CREATED)


VOTE_INPUT = FieldSet(VoteApi.InputSerializer)
# What each protocol's vote carries; the other answer fields are refused by name.
ANSWER_FIELD = {"acr": "score", "dcr": "score", "rank-k": "order"}
ANSWER_WORDS = {"choice": "a choice (left or right)", "score": "a score on its scale", "order": "an order of the items"}


def _check_vote_shape(study: Study, values: dict) -> None:
    """A vote that does not fit the study's protocol: 400 naming the field (a pair vote on an acr
    study, a score on a pairwise one, …)."""
    wanted = ANSWER_FIELD.get(study.protocol, "choice")
    for name in ("choice", "score", "order"):
        if name != wanted and name in values:
            message = f"this {study.protocol} study takes {ANSWER_WORDS[wanted]}, not {ANSWER_WORDS[name]}"
            raise WrongProtocol(message, fields={name: [message]})
    if wanted not in values:
        message = f"this {study.protocol} study takes {ANSWER_WORDS[wanted]}"
        raise WrongProtocol(message, fields={wanted: ["This field is required."]})


class ViewingReportApi(APIView):
    """The rating page reports the rater's screen when a session starts and whenever it changes."""

    permission_classes = [IsRater]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ViewingReportInput"

        device_pixel_ratio = StrictFloatField(min_value=0.25, max_value=10)
        screen_width = StrictIntegerField(min_value=1, max_value=100_000, help_text="CSS pixels")
        screen_height = StrictIntegerField(min_value=1, max_value=100_000, help_text="CSS pixels")
        viewport_width = StrictIntegerField(min_value=1, max_value=100_000, help_text="CSS pixels")
        viewport_height = StrictIntegerField(min_value=1, max_value=100_000, help_text="CSS pixels")
        zoom = StrictFloatField(min_value=0.1, max_value=10, required=False, allow_null=True)
        user_agent = StrictCharField(max_length=512, allow_blank=True, required=False, default="")
        native = StrictBooleanField(help_text="Every stimulus shown one image pixel per device pixel")
        layout = StrictChoiceField(choices=ViewingReport.Layout.values)
        px_per_mm = StrictFloatField(min_value=0.5, max_value=100, required=False, allow_null=True)
        viewing_distance_mm = StrictFloatField(min_value=100, max_value=3000, required=False, allow_null=True)
        px_per_degree = StrictFloatField(min_value=1, max_value=1000, required=False, allow_null=True)

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ViewingReportOutput"

        id = serializers.IntegerField(help_text="Send with your votes as 'viewing'")

    @extend_schema(
        request=InputSerializer,
        responses={201: OutputSerializer, 400: ERROR, 401: ERROR, 403: ERROR, 404: ERROR, 409: ERROR},
        summary="Report the rater's viewing conditions",
    )
    def post(self, request, slug: str):
        _, rater = _rated_study(request, slug)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        report = viewing.viewing_report_create(rater=rater, **data.validated_data)
        return Response(self.OutputSerializer(report).data, status=status.HTTP_201_CREATED)


class RaterStatusApi(APIView):
    """Where the rater stands: the completion code only once they have finished."""

    permission_classes = [IsRater]

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "RaterStatus"

        status = serializers.ChoiceField(["in_progress", "finished", "screened_out"])
        progress = _ProgressSerializer()
        code = serializers.CharField(allow_null=True, help_text="The completion (or screen-out) code, once earned")
        url = serializers.CharField(
            allow_null=True, help_text="Where to send the rater back with it, if the study says"
        )

    @extend_schema(responses={200: OutputSerializer, 401: ERROR, 403: ERROR, 404: ERROR}, summary="The rater's status")
    def get(self, request, slug: str):
        study, rater = _rated_study(request, slug)
        return Response(self.OutputSerializer(completion.rater_completion(study=study, rater=rater)).data)
