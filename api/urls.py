from django.urls import path

from api import schema, views

urlpatterns = [
    path("operations", views.operations, name="operations"),
    path("operations/<uuid:operation_id>", views.operation, name="operation"),
    path("operations/<uuid:operation_id>/cancel", views.cancel_operation, name="cancel-operation"),
    path("operations/<uuid:operation_id>/retry", views.retry_operation, name="retry-operation"),
    path("protected-operation", views.templates_start, name="protected-operation"),
    path("resource-intensive-operation", views.templates_start, name="resource-intensive"),
    path("schema", schema.schema, name="schema"),
]
