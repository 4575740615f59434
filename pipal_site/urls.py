from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.static import serve
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from annotation.rating.urls import api_urlpatterns
from core.views import api_not_found

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/", include((api_urlpatterns, "api"))),
    path("api/owner/", include("dashboard.owner_api.urls")),
    # [\s\S], not ".": a path with a line break in it (%0A) is under /api/ too, and answers JSON.
    re_path(r"^api(?:/(?P<rest>[\s\S]*))?$", api_not_found),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("annotation.rating.urls")),
    path("", include("dashboard.urls")),
]


def media(request, path):
    # MEDIA_ROOT (public stimuli only) read per request, not frozen when the URLconf loads.
    return serve(request, path, document_root=settings.MEDIA_ROOT)


if settings.SERVE_MEDIA:
    urlpatterns.append(re_path(rf"^{settings.MEDIA_URL.lstrip('/')}(?P<path>.*)$", media))
