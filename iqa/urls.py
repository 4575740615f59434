"""Benchmark reports; the site includes these at its root."""

from django.urls import path

from iqa import views

app_name = "iqa"

urlpatterns = [
    path("study/<slug:slug>/benchmark/", views.benchmark_file, name="benchmark"),
    path("study/<slug:slug>/benchmark/<str:name>", views.benchmark_file, name="benchmark-file"),
    path("study/<slug:slug>/benchmark/<int:run_id>/", views.benchmark_file, name="benchmark-run"),
    path("study/<slug:slug>/benchmark/<int:run_id>/<str:name>", views.benchmark_file, name="benchmark-run-file"),
]
