from django.contrib import admin
from django.urls import include, path

from operations import prometheus

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("operations.urls")),
    path("metrics", prometheus.metrics_view, name="metrics"),
    path("", include("dashboard.urls")),
]

handler404 = "operations.api.not_found"
