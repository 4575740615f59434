"""The owner API's routes, mounted at /api/owner/ (namespace ``owner-api``)."""

from django.urls import path

from dashboard.owner_api import views

app_name = "owner-api"

urlpatterns = [
    path("studies/", views.StudyListApi.as_view(), name="study-list"),
    path("studies/<slug:slug>/", views.StudyDetailApi.as_view(), name="study-detail"),
    path("studies/<slug:slug>/references/", views.ReferenceListApi.as_view(), name="reference-list"),
    path("studies/<slug:slug>/distortion-types/", views.DistortionTypeListApi.as_view(), name="type-list"),
    path("studies/<slug:slug>/images/", views.ImageListApi.as_view(), name="image-list"),
    path("studies/<slug:slug>/judgments/", views.JudgmentListApi.as_view(), name="judgment-list"),
    path("studies/<slug:slug>/mos/", views.MosApi.as_view(), name="mos"),
    path("studies/<slug:slug>/scores/", views.ScoreListApi.as_view(), name="score-list"),
    path("studies/<slug:slug>/benchmarks/", views.BenchmarkRunListApi.as_view(), name="benchmark-list"),
    path(
        "studies/<slug:slug>/benchmarks/<int:run_id>/", views.BenchmarkRunDetailApi.as_view(), name="benchmark-detail"
    ),
    path(
        "studies/<slug:slug>/benchmarks/<int:run_id>/tables/<slug:name>/",
        views.BenchmarkTableApi.as_view(),
        name="benchmark-table",
    ),
    path("studies/<slug:slug>/jobs/generate/", views.GenerateJobApi.as_view(), name="job-generate"),
    path("studies/<slug:slug>/jobs/score/", views.ScoreJobApi.as_view(), name="job-score"),
    path("studies/<slug:slug>/jobs/benchmark/", views.BenchmarkJobApi.as_view(), name="job-benchmark"),
    path("jobs/<int:job_id>/", views.JobDetailApi.as_view(), name="job-detail"),
]
