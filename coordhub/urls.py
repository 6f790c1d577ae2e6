from django.contrib import admin
from django.urls import include, path

from monitoring import views as monitoring

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("api.urls")),
    path("api/", include("monitoring.urls")),
    path("metrics", monitoring.prometheus_metrics, name="metrics"),
    path("", include("dashboard.urls")),
]

handler404 = "api.errors.not_found"
handler500 = "api.errors.server_error"
