from __future__ import annotations

from django.urls import path

from webapp.pages import views

app_name = "pages"

urlpatterns = [
    path("p/<slug:slug>/", views.project_detail, name="project"),
]
