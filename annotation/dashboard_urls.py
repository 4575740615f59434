"""The owner dashboard; the site includes these at its root."""

from django.urls import path

from annotation import dashboard

app_name = "dashboard"

urlpatterns = [
    path("study/<slug:slug>/dashboard/", dashboard.study_dashboard, name="study"),
]
