"""The owners' pages: the home page, a study's dashboard and its charts as files, its raters and
payments, its benchmark reports and their files. The site includes these at its root."""

from django.urls import path

from dashboard import benchmark_files, payments, views

app_name = "dashboard"

urlpatterns = [
    path("", views.home, name="home"),
    path("study/<slug:slug>/dashboard/", views.study_dashboard, name="study"),
    path("study/<slug:slug>/dashboard/charts/<slug:chart>", views.study_chart, name="chart"),
    path("study/<slug:slug>/raters/", payments.rater_list, name="raters"),
    path("study/<slug:slug>/raters.csv", payments.rater_csv, name="raters-csv"),
    path("study/<slug:slug>/raters/check/", payments.code_check, name="raters-check"),
    path("study/<slug:slug>/benchmark/", benchmark_files.benchmark_page, name="benchmark"),
    path("study/<slug:slug>/benchmark/<str:name>", benchmark_files.benchmark_file, name="benchmark-file"),
    path("study/<slug:slug>/benchmark/<int:run_id>/", benchmark_files.benchmark_page, name="benchmark-run"),
    path(
        "study/<slug:slug>/benchmark/<int:run_id>/<str:name>", benchmark_files.benchmark_file, name="benchmark-run-file"
    ),
]
