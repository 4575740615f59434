"""The rater API: join a study, fetch the next pair, vote.

Each endpoint validates with its own input serializer, calls one service and
renders with its own output serializer. Raters never see scores.
"""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from core.fields import StrictCharField, StrictChoiceField, StrictIntegerField

from . import services
from .exceptions import Forbidden
from .models import Rater, Study
from .permissions import IsRater

ERROR = inline_serializer(
    "Error",
    {"error": inline_serializer("ErrorBody", {"code": serializers.CharField(), "message": serializers.CharField()})},
)


def _study(slug: str) -> Study:
    return get_object_or_404(Study, slug=slug)


def _rater_of(request, study: Study) -> Rater:
    rater: Rater = request.user
    if rater.study_id != study.id:
        raise Forbidden("this rater token belongs to another study")
    return rater


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

    @extend_schema(
        request=InputSerializer,
        responses={
            201: OutputSerializer,
            400: ERROR,
            404: ERROR,
            409: ERROR,
            429: OpenApiResponse(ERROR, description="Too many joins from this address; retry later"),
        },
        summary="Join a study as a rater",
    )
    def post(self, request, slug: str):
        study = _study(slug)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        rater, token = services.rater_create(study=study, external_id=data.validated_data["external_id"])
        return Response(self.OutputSerializer({"rater": rater.id, "token": token}).data, status=status.HTTP_201_CREATED)


def _absolute(request, file) -> str:
    return request.build_absolute_uri(file.url)


class _ReferenceSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="reference_id")
    url = serializers.SerializerMethodField()

    def get_url(self, trial) -> str:
        return _absolute(self.context["request"], trial.reference_file)


class _CandidateSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="image_id", allow_null=True, help_text="null for control pictures")
    url = serializers.SerializerMethodField()

    def get_url(self, candidate) -> str:
        return _absolute(self.context["request"], candidate.file)


class _ProgressSerializer(serializers.Serializer):
    done = serializers.IntegerField(help_text="Rated trials so far")
    quota = serializers.IntegerField(help_text="Rated trials asked of this rater")


class PairNextApi(APIView):
    permission_classes = [IsRater]

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "PairNextOutput"

        assignment = serializers.CharField(source="token", help_text="Send back with the vote")
        phase = serializers.ChoiceField(["training", "rating"], help_text="training pairs give feedback")
        reference = _ReferenceSerializer(source="*")
        left = _CandidateSerializer()
        right = _CandidateSerializer()
        expires_at = serializers.DateTimeField()
        progress = _ProgressSerializer(source="*")

    @extend_schema(
        responses={
            200: OutputSerializer,
            204: OpenApiResponse(description="No pair left for this rater"),
            401: ERROR,
            403: ERROR,
            404: ERROR,
            409: ERROR,
        },
        summary="The next pair to judge",
    )
    def get(self, request, slug: str):
        study = _study(slug)
        trial = services.pair_next(study=study, rater=_rater_of(request, study))
        if trial is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(self.OutputSerializer(trial, context={"request": request}).data)


class VoteApi(APIView):
    permission_classes = [IsRater]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "VoteInput"

        assignment = StrictCharField(min_length=1, max_length=64, help_text="The assignment of the pair")
        choice = StrictChoiceField(choices=["left", "right"])
        response_ms = StrictIntegerField(min_value=0, max_value=24 * 3600 * 1000)

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "VoteOutput"

        progress = _ProgressSerializer(source="*")
        feedback = inline_serializer(
            "TrainingFeedback",
            {"correct": serializers.BooleanField(), "message": serializers.CharField()},
            allow_null=True,
            help_text="Training pairs only",
        )

    @extend_schema(
        request=InputSerializer,
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
        summary="Vote on an issued pair (each assignment counts once)",
    )
    def post(self, request, slug: str):
        study = _study(slug)
        rater = _rater_of(request, study)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        outcome = services.vote_submit(
            study=study,
            rater=rater,
            assignment_token=data.validated_data["assignment"],
            choice=data.validated_data["choice"],
            response_ms=data.validated_data["response_ms"],
        )
        return Response(self.OutputSerializer(outcome).data, status=status.HTTP_201_CREATED)
