from django.urls import path

from dashboard import views

urlpatterns = [
    path("", views.index, name="dashboard"),
    path("dashboard/live/", views.live, name="dashboard-live"),
    path("dashboard/start/", views.start, name="dashboard-start"),
    path("dashboard/form/", views.start_form, name="dashboard-form"),
    path(
        "dashboard/operations/<uuid:operation_id>/cancel/",
        views.cancel_operation,
        name="dashboard-cancel",
    ),
]
