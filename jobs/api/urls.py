"""/api/: the versioned API, its OpenAPI schema and the interactive docs (assets served locally)."""

from __future__ import annotations

from django.conf import settings
from django.urls import include, path, re_path
from django.utils.csp import CSP
from django.views.decorators.csp import csp_override
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import SimpleRouter

from jobs.api.views import JobViewSet, MeView, NamespaceViewSet, NotFoundView

app_name = "api"

router = SimpleRouter()
router.register("jobs", JobViewSet, basename="job")
router.register("namespaces", NamespaceViewSet, basename="namespace")

# Swagger UI sets style attributes from its scripts; scripts stay 'self'-only (no inline JS).
DOCS_CSP = {**settings.SECURE_CSP, "style-src": [*settings.SECURE_CSP["style-src"], CSP.UNSAFE_INLINE]}

urlpatterns = [
    path("v1/", include(router.urls)),
    path("v1/me/", MeView.as_view(), name="me"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path(
        "docs/",
        csp_override(DOCS_CSP)(SpectacularSwaggerSplitView.as_view(url_name="api:schema")),
        name="docs",
    ),
    # Anything else under /api/ is a JSON 404, not the site's HTML page.
    re_path(r"^", NotFoundView.as_view()),
]
