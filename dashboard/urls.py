from django.urls import path

from dashboard import detail, history, views

urlpatterns = [
    path("", views.index, name="dashboard"),
    path("dashboard/live/", views.live, name="dashboard-live"),
    path("dashboard/start/", views.start, name="dashboard-start"),
    path("dashboard/form/", views.start_form, name="dashboard-form"),
    path("dashboard/history/", history.history, name="dashboard-history"),
    path("operations/<uuid:operation_id>/", detail.operation_page, name="operation-detail"),
    path("operations/<uuid:operation_id>/live/", detail.operation_live, name="operation-live"),
    path(
        "operations/<uuid:operation_id>/cancel/", detail.cancel_from_page, name="operation-cancel"
    ),
    path("operations/<uuid:operation_id>/retry/", detail.retry, name="operation-retry"),
    path(
        "dashboard/operations/<uuid:operation_id>/cancel/",
        views.cancel_operation,
        name="dashboard-cancel",
    ),
]
