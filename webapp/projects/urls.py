from __future__ import annotations

from django.urls import path

from webapp.projects import views

app_name = "projects"

urlpatterns = [
    path("new/", views.new_project, name="new"),
    path("<slug:slug>/members/", views.members, name="members"),
    path("<slug:slug>/members/<int:membership_id>/", views.change_member, name="change_member"),
    path("<slug:slug>/keys/", views.keys, name="keys"),
    path("<slug:slug>/delete/", views.delete_project, name="delete"),
]
