from __future__ import annotations

from django.urls import path

from webapp.pages import audit, figure_data, views

app_name = "pages"

urlpatterns = [
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
