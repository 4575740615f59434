from django.urls import path

from . import apis, views

app_name = "annotation"

api_urlpatterns = [
    path("studies/<slug:slug>/raters/", apis.RaterJoinApi.as_view(), name="rater-join"),
    path("studies/<slug:slug>/pairs/next/", apis.PairNextApi.as_view(), name="pair-next"),
    path("studies/<slug:slug>/votes/", apis.VoteApi.as_view(), name="vote"),
]

urlpatterns = [
    path("", views.home, name="home"),
    path("study/<slug:slug>/", views.study_welcome, name="welcome"),
    path("study/<slug:slug>/rate/", views.study_rate, name="rate"),
    path("study/<slug:slug>/finish/", views.study_finish, name="finish"),
]
