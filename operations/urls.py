from django.urls import path

from operations import api

urlpatterns = [
    path("operations", api.operations, name="operations"),
    path("operations/<uuid:operation_id>", api.operation, name="operation"),
    path("operations/<uuid:operation_id>/cancel", api.cancel_operation, name="cancel-operation"),
    path("protected-operation", api.protected_operation, name="protected-operation"),
    path("health", api.health, name="health"),
    path("performance", api.performance, name="performance"),
    path("resource-pool/metrics", api.resource_pool_metrics, name="resource-pool-metrics"),
]
