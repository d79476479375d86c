"""Resumable uploads under /api/ (kept apart from api_urls.py so the tus routes read as one piece)."""

from __future__ import annotations

from django.urls import path

from webapp.ingestion.api import uploads

urlpatterns = [
    path("uploads/", uploads.Uploads.as_view(), name="uploads"),
    path("uploads/<uuid:pk>/", uploads.UploadDetail.as_view(), name="upload-detail"),
    path(
        "projects/<slug:slug>/datasets/from-uploads/",
        uploads.DatasetFromUploads.as_view(),
        name="project-datasets-from-uploads",
    ),
    path(
        "projects/<slug:slug>/imports/from-upload/",
        uploads.ImportFromUpload.as_view(),
        name="project-imports-from-upload",
    ),
]
