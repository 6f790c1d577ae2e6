from django.urls import path

from monitoring import views

urlpatterns = [
    path("health", views.health, name="health"),
    path("performance", views.performance, name="performance"),
    path("resource-pool/metrics", views.resource_pool_metrics, name="resource-pool-metrics"),
]
