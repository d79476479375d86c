"""Every HTML page but the account ones (those live in webapp/accounts), in one place.

Project and collection pages keep their own namespaces (`projects:`, `collections:`), the rest are `pages:`.
"""

from __future__ import annotations

from django.urls import include, path

from webapp.pages import audit, collections, figure_data, projects, views

project_urls = [
    path("new/", projects.new_project, name="new"),
    path("<slug:slug>/members/", projects.members, name="members"),
    path("<slug:slug>/members/<int:membership_id>/", projects.change_member, name="change_member"),
    path("<slug:slug>/keys/", projects.keys, name="keys"),
    path("<slug:slug>/delete/", projects.delete_project, name="delete"),
]

collection_urls = [
    path("collections/", collections.collection_list, name="list"),
    path("collections/<int:pk>/", collections.collection_detail, name="detail"),
    path("collections/<int:pk>/share/", collections.share, name="share"),
    path("collections/<int:pk>/revoke/", collections.revoke, name="revoke"),
    path("collections/<int:pk>/snapshot/", collections.snapshot, name="snapshot"),
    path("p/<slug:slug>/collections/new/", collections.new_collection, name="new"),
    path("p/<slug:slug>/training-collections/", collections.training_collections, name="training"),
]

page_urls = [
    path("p/<slug:slug>/", views.project_detail, name="project"),
    path("p/<slug:slug>/gallery/", views.project_gallery, name="project_gallery"),
    path("p/<slug:slug>/review/", views.review, name="review"),
    path("p/<slug:slug>/labels/", audit.label_audit, name="label_audit"),
    path("p/<slug:slug>/import/", views.import_images, name="import"),
    path("datasets/<int:pk>/", views.dataset_detail, name="dataset"),
    path("datasets/<int:pk>/gallery/", views.dataset_gallery, name="gallery"),
    path("images/<int:pk>/", views.image_detail, name="image"),
    path("datasets/<int:pk>/figures/<str:name>.json", figure_data.dataset_figure, name="dataset_figure"),
    path("images/<int:pk>/figures/<str:name>.json", figure_data.image_figure, name="image_figure"),
]

urlpatterns = [
    path("", views.home, name="home"),
    path("projects/", include((project_urls, "projects"))),
    path("", include((collection_urls, "collections"))),
    path("", include((page_urls, "pages"))),
]
