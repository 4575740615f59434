"""The owner API: a study's data for scripts, and the admin's actions that scripts need.

Every view validates with its input serializer, calls one service or selector and renders
with its output serializer. Tables answer JSON, or CSV with ``?format=csv`` or
``Accept: text/csv``; refusals are always JSON in the error shape.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_view,
)
from rest_framework import status
from rest_framework.exceptions import MethodNotAllowed
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.serializers import Serializer
from rest_framework.views import APIView

from annotation.models import Study
from annotation.rating.apis import ERROR
from dashboard.owner_api import jobs, selectors, serializers, services
from dashboard.owner_api.authentication import HasOwnerToken, OwnerTokenAuthentication
from dashboard.owner_api.renderers import CsvRenderer, JudgmentCursorPagination
from dashboard.owner_api.tokens import token_studies, token_study

TAGS = ["owner"]
REFUSALS = {
    401: OpenApiResponse(ERROR, description="No owner token, or an unknown or revoked one"),
    403: OpenApiResponse(ERROR, description="A rater's token, or a write this token may not make"),
    404: OpenApiResponse(ERROR, description="No such study among the token's studies (another owner's study too)"),
}
WRITE_REFUSALS = {400: OpenApiResponse(ERROR, description="Invalid input; fields name what"), **REFUSALS}

STUDY_EXAMPLE = {
    "slug": "demo",
    "name": "Demo study",
    "description": "",
    "created_at": "2026-12-01T09:00:00Z",
    "mos_source": "elo",
    "settings": {"elo_m": 400.0, "elo_k": 16.0, "elo_initial": 1400.0, "mos_window": 10, "trials_per_rater": 60},
    "counts": {"references": 4, "distortion_types": 6, "images": 48, "raters": 12, "judgments": 720},
}
JOB_EXAMPLE = {
    "id": 7,
    "kind": "score",
    "study": "demo",
    "params": {"metrics": "psnr,ssim", "device": "cpu", "batch": None},
    "status": "running",
    "done": 40,
    "total": 96,
    "result": {},
    "error": "",
    "created_at": "2026-12-01T09:00:00Z",
    "started_at": "2026-12-01T09:00:01Z",
    "finished_at": None,
}


class OwnerApi(APIView):
    """Owner-token authentication; a method a path does not answer is 405 before credentials
    are looked at (as for the rest of the API)."""

    authentication_classes = [OwnerTokenAuthentication]
    permission_classes = [HasOwnerToken]
    renderer_classes = [JSONRenderer]

    def initial(self, request, *args, **kwargs):
        method = request.method.lower()
        if method not in self.http_method_names or not hasattr(self, method):
            raise MethodNotAllowed(request.method)
        super().initial(request, *args, **kwargs)

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        # A refusal is JSON in the error shape, whatever format the table was asked in.
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return response

    def study(self, slug: str) -> Study:
        return token_study(self.request.auth, slug)


class TableApi(OwnerApi):
    renderer_classes = [JSONRenderer, CsvRenderer]
    row_serializer = None  # names an empty CSV table's columns


# --- studies ---------------------------------------------------------------------------


class StudyListApi(TableApi):
    row_serializer = serializers.StudySerializer

    @extend_schema(
        tags=TAGS,
        summary="The token's studies with their settings and counts",
        responses={200: serializers.StudySerializer(many=True), **REFUSALS},
        examples=[OpenApiExample("One study", value=[STUDY_EXAMPLE], response_only=True)],
    )
    def get(self, request):
        rows = [selectors.study_overview(study) for study in token_studies(request.auth)]
        return Response(serializers.StudySerializer(rows, many=True).data)

    @extend_schema(
        tags=TAGS,
        summary="Create a study; the token's user becomes its owner (not with a token scoped to studies)",
        request=serializers.StudyCreateSerializer,
        responses={201: serializers.StudySerializer, 409: ERROR, **WRITE_REFUSALS},
        examples=[
            OpenApiExample("A new study", value={"slug": "sr-2027", "name": "SR methods 2027"}, request_only=True),
            OpenApiExample("Created", value=STUDY_EXAMPLE, response_only=True, status_codes=["201"]),
        ],
    )
    def post(self, request):
        data = serializers.StudyCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        study = services.owner_study_create(token=request.auth, **data.validated_data)
        return Response(
            serializers.StudySerializer(selectors.study_overview(study)).data, status=status.HTTP_201_CREATED
        )


class StudyDetailApi(OwnerApi):
    @extend_schema(
        tags=TAGS,
        summary="One study: settings and counts",
        responses={200: serializers.StudySerializer, **REFUSALS},
        examples=[OpenApiExample("The demo", value=STUDY_EXAMPLE, response_only=True)],
    )
    def get(self, request, slug: str):
        return Response(serializers.StudySerializer(selectors.study_overview(self.study(slug))).data)


# --- references, types, images ----------------------------------------------------------


class ReferenceListApi(TableApi):
    row_serializer = serializers.ReferenceSerializer
    parser_classes = [MultiPartParser]

    @extend_schema(
        tags=TAGS,
        summary="The study's references",
        responses={200: serializers.ReferenceSerializer(many=True), **REFUSALS},
        examples=[
            OpenApiExample(
                "A reference",
                value=[
                    {
                        "id": 1,
                        "name": "A0001",
                        "original_filename": "A0001.png",
                        "sha256": "9f86d08…",
                        "width": 288,
                        "height": 288,
                        "created_at": "2026-12-01T09:00:00Z",
                    }
                ],
                response_only=True,
            )
        ],
    )
    def get(self, request, slug: str):
        references = self.study(slug).references.order_by("name")
        return Response(serializers.ReferenceSerializer(references, many=True).data)

    @extend_schema(
        tags=TAGS,
        summary="Add a reference (multipart upload, checked as the admin's upload is)",
        request={"multipart/form-data": serializers.ReferenceUploadSerializer},
        responses={201: serializers.ReferenceSerializer, 409: ERROR, **WRITE_REFUSALS},
        examples=[
            OpenApiExample(
                "Added",
                value={
                    "id": 5,
                    "name": "A0005",
                    "original_filename": "forest.png",
                    "sha256": "2c26b46…",
                    "width": 288,
                    "height": 288,
                    "created_at": "2026-12-01T09:00:00Z",
                },
                response_only=True,
                status_codes=["201"],
            )
        ],
    )
    def post(self, request, slug: str):
        study = self.study(slug)
        data = serializers.ReferenceUploadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        reference = services.owner_reference_add(
            study=study, name=data.validated_data["name"].strip(), data=upload.read(), filename=upload.name
        )
        return Response(serializers.ReferenceSerializer(reference).data, status=status.HTTP_201_CREATED)


class DistortionTypeListApi(TableApi):
    row_serializer = serializers.DistortionTypeSerializer
    parser_classes = [JSONParser]

    @extend_schema(
        tags=TAGS,
        summary="The study's distortion types",
        responses={200: serializers.DistortionTypeSerializer(many=True), **REFUSALS},
        examples=[
            OpenApiExample(
                "A generated type",
                value=[
                    {
                        "id": 3,
                        "code": "01",
                        "name": "Gaussian blur",
                        "category": "traditional",
                        "subtype": "blur",
                        "generator": "gaussian_blur",
                        "levels": {"1": {"sigma": 1.0}, "2": {"sigma": 2.0}},
                        "created_at": "2026-12-01T09:00:00Z",
                    }
                ],
                response_only=True,
            )
        ],
    )
    def get(self, request, slug: str):
        kinds = self.study(slug).distortion_types.order_by("code")
        return Response(serializers.DistortionTypeSerializer(kinds, many=True).data)

    @extend_schema(
        tags=TAGS,
        summary="Add distortion types: catalogue codes, or one hand-made type (levels checked against its family)",
        request=serializers.DistortionTypeAddSerializer,
        responses={201: serializers.DistortionTypeSerializer(many=True), 409: ERROR, **WRITE_REFUSALS},
        examples=[
            OpenApiExample("From the catalogue", value={"catalogue": ["01", "12"]}, request_only=True),
            OpenApiExample(
                "Hand-made",
                value={
                    "code": "90",
                    "name": "Strong blur",
                    "category": "traditional",
                    "generator": "gaussian_blur",
                    "levels": {"1": {"sigma": 4.0}},
                },
                request_only=True,
            ),
        ],
    )
    def post(self, request, slug: str):
        study = self.study(slug)
        data = serializers.DistortionTypeAddSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        if "catalogue" in fields:
            kinds = services.owner_catalogue_types_add(study=study, codes=fields["catalogue"])
        else:
            kinds = [services.owner_type_create(study=study, **fields)]
        return Response(serializers.DistortionTypeSerializer(kinds, many=True).data, status=status.HTTP_201_CREATED)


class ImageListApi(TableApi):
    row_serializer = serializers.ImageSerializer

    @extend_schema(
        tags=TAGS,
        summary="The study's distorted images with their provenance",
        responses={200: serializers.ImageSerializer(many=True), **REFUSALS},
        examples=[
            OpenApiExample(
                "A generated image",
                value=[
                    {
                        "id": 11,
                        "name": "A0001_01_02.png",
                        "reference": "A0001",
                        "distortion_type": "01",
                        "level": 2,
                        "sha256": "e3b0c44…",
                        "width": 288,
                        "height": 288,
                        "source": "generated",
                        "generator": "gaussian_blur",
                        "params": {"sigma": 2.0},
                        "provenance": {"generator": "gaussian_blur", "params": {"sigma": 2.0}, "seed": 12345},
                        "created_at": "2026-12-01T09:00:00Z",
                    }
                ],
                response_only=True,
            )
        ],
    )
    def get(self, request, slug: str):
        images = selectors.study_images(self.study(slug))
        return Response(serializers.ImageSerializer(images, many=True).data)


# --- judgments, MOS, scores -------------------------------------------------------------


class JudgmentListApi(TableApi):
    row_serializer = serializers.JudgmentSerializer
    pagination_class = JudgmentCursorPagination

    @extend_schema(
        tags=TAGS,
        summary="The judgment log, oldest first, in cursor pages (follow 'next' or the Link header)",
        parameters=[
            serializers.JudgmentFilterSerializer,
            OpenApiParameter("cursor", OpenApiTypes.STR, description="From the previous page's 'next'"),
            OpenApiParameter("page_size", OpenApiTypes.INT, description="Judgments per page (500; at most 5000)"),
        ],
        responses={200: serializers.JudgmentPageSerializer, 400: ERROR, **REFUSALS},
        examples=[
            OpenApiExample(
                "A page",
                value={
                    "next": "https://pipal.example.org/api/owner/studies/demo/judgments/?cursor=cD0xMjM%3D",
                    "previous": None,
                    "results": [
                        {
                            "id": 123,
                            "created_at": "2026-12-01T09:00:00Z",
                            "rater": 4,
                            "rater_external_id": "PROLIFIC_5f1e",
                            "reference": "A0001",
                            "image_a": "A0001_01_02.png",
                            "image_b": "A0001_03_01.png",
                            "winner": "A0001_03_01.png",
                            "tie": False,
                            "elo_a_before": 1400.0,
                            "elo_a_after": 1392.0,
                            "elo_b_before": 1400.0,
                            "elo_b_after": 1408.0,
                            "response_ms": 2100,
                            "source": "live",
                        }
                    ],
                },
                response_only=True,
            )
        ],
    )
    def get(self, request, slug: str):
        study = self.study(slug)
        query = serializers.JudgmentFilterSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        judgments = selectors.study_judgments(study, **query.validated_data)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(judgments, request, view=self)
        return paginator.get_paginated_response(serializers.JudgmentSerializer(page, many=True).data)


class MosApi(TableApi):
    row_serializer = serializers.MosRecordSerializer

    @extend_schema(
        tags=TAGS,
        summary="Per image: Elo MOS and its spread, raters, judgments, Bradley–Terry MOS and CI; with the "
        "settings, log size and fit behind them (CSV: the rows only)",
        responses={
            200: PolymorphicProxySerializer(
                component_name="OwnerAnyMos",
                serializers=[serializers.MosSerializer, serializers.ProtocolMosSerializer],
                resource_type_field_name=None,
            ),
            **REFUSALS,
        },
        examples=[
            OpenApiExample(
                "MOS",
                value={
                    "metadata": {
                        "slug": "demo",
                        "elo_k": 16.0,
                        "mos_window": 10,
                        "judgments": 720,
                        "bt_fitted_at": "2026-12-01T08:00:00+00:00",
                        "bt_fit": "stale",
                        "bt_stale": True,
                    },
                    "results": [
                        {
                            "reference": "A0001",
                            "image": "A0001_01_02.png",
                            "distortion_type": "01",
                            "category": "traditional",
                            "subtype": "blur",
                            "level": 2,
                            "elo": 1392.0,
                            "mos": 1396.4,
                            "mos_sd": 5.1,
                            "judgments": 30,
                            "raters": 9,
                            "mos_bt": 1388.2,
                            "ci_low": 1350.0,
                            "ci_high": 1421.7,
                        }
                    ],
                },
                response_only=True,
            )
        ],
    )
    def get(self, request, slug: str):
        study = self.study(slug)
        mos = selectors.study_mos(study)
        if request.accepted_renderer.format == CsvRenderer.format:
            return Response(mos["results"])
        serializer = serializers.MosSerializer if study.is_pairwise else serializers.ProtocolMosSerializer
        return Response(serializer(mos).data)


class ScoreListApi(TableApi):
    row_serializer = serializers.ScoreSerializer

    @extend_schema(
        tags=TAGS,
        summary="Stored metric scores of the study's images (each metric's latest version)",
        parameters=[serializers.ScoreFilterSerializer],
        responses={200: serializers.ScoreSerializer(many=True), **REFUSALS},
        examples=[
            OpenApiExample(
                "Scores",
                value=[
                    {
                        "image": "A0001_01_02.png",
                        "reference": "A0001",
                        "metric": "psnr",
                        "value": 27.41,
                        "version": "0.1.13",
                    }
                ],
                response_only=True,
            )
        ],
    )
    def get(self, request, slug: str):
        study = self.study(slug)
        query = serializers.ScoreFilterSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        rows = selectors.study_metric_scores(study, **query.validated_data)
        return Response(serializers.ScoreSerializer(rows, many=True).data)


# --- benchmarks -------------------------------------------------------------------------

RUN_EXAMPLE = {
    "id": 3,
    "created_at": "2026-12-01T10:00:00Z",
    "metrics": {"psnr": "0.1.13", "ssim": "0.1.13"},
    "images": 48,
    "summary": {"psnr": 0.41, "ssim": 0.52},
    "tables": ["benchmark"],
}


class BenchmarkRunListApi(TableApi):
    row_serializer = serializers.BenchmarkRunSerializer

    @extend_schema(
        tags=TAGS,
        summary="The study's benchmark runs, newest first",
        responses={200: serializers.BenchmarkRunSerializer(many=True), **REFUSALS},
        examples=[OpenApiExample("Runs", value=[RUN_EXAMPLE], response_only=True)],
    )
    def get(self, request, slug: str):
        runs = self.study(slug).benchmark_runs.all()
        rows = [selectors.benchmark_run_overview(run) for run in runs]
        return Response(serializers.BenchmarkRunSerializer(rows, many=True).data)


class BenchmarkRunDetailApi(OwnerApi):
    @extend_schema(
        tags=TAGS,
        summary="One benchmark run: metrics and versions, images, whole-study SRCC, its tables",
        responses={200: serializers.BenchmarkRunSerializer, **REFUSALS},
        examples=[OpenApiExample("A run", value=RUN_EXAMPLE, response_only=True)],
    )
    def get(self, request, slug: str, run_id: int):
        run = selectors.study_benchmark_run(self.study(slug), run_id)
        return Response(serializers.BenchmarkRunSerializer(selectors.benchmark_run_overview(run)).data)


class BenchmarkTableApi(TableApi):
    @extend_schema(
        tags=TAGS,
        summary="A table of a benchmark run ('benchmark': every cell of the whole-study, Table 3 and per-type "
        "tables, one row each; 'sr_methods' where written)",
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="A list of rows"), **REFUSALS},
        examples=[
            OpenApiExample(
                "Rows",
                value=[
                    {
                        "metric": "psnr",
                        "direction": "↑",
                        "group": "All",
                        "n": 48,
                        "srcc": 0.41,
                        "srcc_low": 0.2,
                        "srcc_high": 0.58,
                        "krcc": 0.29,
                        "plcc": 0.44,
                        "rmse": 30.2,
                    }
                ],
                response_only=True,
            )
        ],
    )
    def get(self, request, slug: str, run_id: int, name: str):
        return Response(selectors.benchmark_table(self.study(slug), run_id, name))


# --- jobs -------------------------------------------------------------------------------

JOB_RESPONSES = {202: serializers.JobSerializer, **WRITE_REFUSALS}


# POST starts a job from the request's fields and answers 202 with it; a subclass names the fields'
# serializer and the service that starts its kind of job (start(token=, study=, **fields)). A comment,
# not a docstring: the schema describes each endpoint with OwnerApi's docstring.
class JobStartApi(OwnerApi):
    parser_classes = [JSONParser]
    request_serializer: type[Serializer]
    start: staticmethod

    def post(self, request, slug: str):
        study = self.study(slug)
        data = self.request_serializer(data=request.data)
        data.is_valid(raise_exception=True)
        job = self.start(token=request.auth, study=study, **data.validated_data)
        return Response(serializers.JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


@extend_schema_view(
    post=extend_schema(
        tags=TAGS,
        summary="Start making the missing images of the study's generated types; poll the job",
        request=serializers.GenerateJobSerializer,
        responses=JOB_RESPONSES,
        examples=[
            OpenApiExample("Two types", value={"types": ["01", "12"]}, request_only=True),
            OpenApiExample(
                "Started", value={**JOB_EXAMPLE, "kind": "generate"}, response_only=True, status_codes=["202"]
            ),
        ],
    )
)
class GenerateJobApi(JobStartApi):
    request_serializer = serializers.GenerateJobSerializer
    start = staticmethod(jobs.job_generate_start)


@extend_schema_view(
    post=extend_schema(
        tags=TAGS,
        summary="Start scoring the study's images with metrics (compute_scores); poll the job",
        request=serializers.ScoreJobSerializer,
        responses=JOB_RESPONSES,
        examples=[
            OpenApiExample("PSNR and SSIM", value={"metrics": "psnr,ssim", "device": "cpu"}, request_only=True),
            OpenApiExample("Started", value=JOB_EXAMPLE, response_only=True, status_codes=["202"]),
        ],
    )
)
class ScoreJobApi(JobStartApi):
    request_serializer = serializers.ScoreJobSerializer
    start = staticmethod(jobs.job_score_start)


@extend_schema_view(
    post=extend_schema(
        tags=TAGS,
        summary="Start a benchmark run of stored scores against the MOS (run_benchmark); poll the job",
        request=serializers.BenchmarkJobSerializer,
        responses=JOB_RESPONSES,
        examples=[
            OpenApiExample("Two metrics", value={"metrics": "psnr,ssim", "resamples": 1000}, request_only=True),
            OpenApiExample(
                "Started", value={**JOB_EXAMPLE, "kind": "benchmark"}, response_only=True, status_codes=["202"]
            ),
        ],
    )
)
class BenchmarkJobApi(JobStartApi):
    request_serializer = serializers.BenchmarkJobSerializer
    start = staticmethod(jobs.job_benchmark_start)


class JobDetailApi(OwnerApi):
    @extend_schema(
        tags=TAGS,
        summary="A job: status (queued, running, done, failed), progress done/total, result or error",
        responses={200: serializers.JobSerializer, **REFUSALS},
        examples=[
            OpenApiExample(
                "Done",
                value={
                    **JOB_EXAMPLE,
                    "kind": "benchmark",
                    "status": "done",
                    "done": 2,
                    "total": 2,
                    "result": {"benchmark_run": 3, "images": 48, "summary": {"psnr": 0.41, "ssim": 0.52}},
                    "finished_at": "2026-12-01T09:02:00Z",
                },
                response_only=True,
            )
        ],
    )
    def get(self, request, job_id: int):
        return Response(serializers.JobSerializer(jobs.job_get(token=request.auth, job_id=job_id)).data)
