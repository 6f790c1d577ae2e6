from django.contrib import admin
from django.urls import include, path

from monitoring import prometheus

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("api.urls")),
    path("api/", include("monitoring.urls")),
    path("metrics", prometheus.metrics_view, name="metrics"),
    path("", include("dashboard.urls")),
]

handler404 = "api.views.not_found"
