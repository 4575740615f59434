"""The raters' routes: the API (under /api/) and the pages of a study link."""

from django.urls import path

from annotation.rating import apis, views

app_name = "annotation"

api_urlpatterns = [
    path("studies/<slug:slug>/raters/", apis.RaterJoinApi.as_view(), name="rater-join"),
    path("studies/<slug:slug>/pairs/next/", apis.PairNextApi.as_view(), name="pair-next"),
    path("studies/<slug:slug>/votes/", apis.VoteApi.as_view(), name="vote"),
    path("studies/<slug:slug>/viewing/", apis.ViewingReportApi.as_view(), name="viewing"),
    path("studies/<slug:slug>/status/", apis.RaterStatusApi.as_view(), name="rater-status"),
]

urlpatterns = [
    path("study/<slug:slug>/", views.study_welcome, name="welcome"),
    path("study/<slug:slug>/rate/", views.study_rate, name="rate"),
    path("study/<slug:slug>/finish/", views.study_finish, name="finish"),
]
