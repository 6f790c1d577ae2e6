from django.urls import path

from operations import api

urlpatterns = [
    path("health", api.health, name="health"),
]
