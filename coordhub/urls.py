from django.contrib import admin
from django.contrib.auth import views as auth
from django.urls import include, path

from monitoring import views as monitoring

# Django's admin as coordhub's: its name, and an index that links the health page.
admin.site.site_header = admin.site.site_title = "coordhub"
admin.site.index_title = "coordhub administration"
admin.site.index_template = "admin/coordhub_index.html"

urlpatterns = [
    # Before the admin's own URLs, whose catch-all would answer it with a 404.
    path("admin/health/", monitoring.health_page, name="admin-health"),
    path("admin/", admin.site.urls),
    # Sign-in for everyone; the admin's own page refuses users who are not staff.
    path("accounts/login/", auth.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth.LogoutView.as_view(), name="logout"),
    path("api/", include("api.urls")),
    path("api/", include("monitoring.urls")),
    path("metrics", monitoring.prometheus_metrics, name="metrics"),
    # The dashboard's charts panel (monitoring draws them; no app imports another's views).
    path("dashboard/charts/", monitoring.charts, name="dashboard-charts"),
    path("", include("dashboard.urls")),
]

handler404 = "api.errors.not_found"
handler500 = "api.errors.server_error"
