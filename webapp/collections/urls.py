from __future__ import annotations

from django.urls import path

from webapp.collections import views

app_name = "collections"

urlpatterns = [
    path("collections/", views.collection_list, name="list"),
    path("collections/<int:pk>/", views.collection_detail, name="detail"),
    path("collections/<int:pk>/share/", views.share, name="share"),
    path("collections/<int:pk>/revoke/", views.revoke, name="revoke"),
    path("collections/<int:pk>/snapshot/", views.snapshot, name="snapshot"),
    path("p/<slug:slug>/collections/new/", views.new_collection, name="new"),
    path("p/<slug:slug>/training-collections/", views.training_collections, name="training"),
]
