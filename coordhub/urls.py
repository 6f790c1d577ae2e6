from django.contrib import admin
from django.contrib.auth import views as auth
from django.urls import include, path

from monitoring import views as monitoring

urlpatterns = [
    path("admin/", admin.site.urls),
    # Sign-in for everyone; the admin's own page refuses users who are not staff.
    path("accounts/login/", auth.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth.LogoutView.as_view(), name="logout"),
    path("api/", include("api.urls")),
    path("api/", include("monitoring.urls")),
    path("metrics", monitoring.prometheus_metrics, name="metrics"),
    path("", include("dashboard.urls")),
]

handler404 = "api.errors.not_found"
handler500 = "api.errors.server_error"
