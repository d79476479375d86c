"""Every app's API routes, collected under /api/."""

from __future__ import annotations

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from classifier.api import active as active_api
from classifier.api import image_detail
from classifier.api import review as review_api
from classifier.api import views as classifier
from webapp.collections.api import views as collections
from webapp.datasets import media
from webapp.datasets.api import exports, label_history, spectrum
from webapp.datasets.api import views as datasets
from webapp.ingestion.api import views as ingestion
from webapp.jobs.api import views as jobs
from webapp.projects.api.views import MembershipViewSet, ProjectViewSet

router = DefaultRouter()
router.register("projects", ProjectViewSet, basename="project")

members = DefaultRouter(trailing_slash=True)
members.register("members", MembershipViewSet, basename="member")

urlpatterns = [
    path("", include(router.urls)),
    path("projects/<slug:project_slug>/", include(members.urls)),
    path("projects/<slug:slug>/datasets/", ingestion.ProjectDatasets.as_view(), name="project-datasets"),
    path("projects/<slug:slug>/export/", datasets.ProjectExport.as_view(), name="project-export"),
    path("projects/<slug:slug>/exports/", exports.ProjectExports.as_view(), name="project-exports"),
    path("exports/<int:pk>/", exports.ExportDownload.as_view(), name="export-download"),
    path("projects/<slug:slug>/imports/", ingestion.ProjectImports.as_view(), name="project-imports"),
    path("projects/<slug:slug>/images/", datasets.ImageList.as_view(), name="project-images"),
    path("projects/<slug:slug>/images/counts/", datasets.ImageCounts.as_view(), name="project-image-counts"),
    path("projects/<slug:slug>/images/ids/", datasets.ImageIds.as_view(), name="project-image-ids"),
    path("projects/<slug:slug>/labels/", datasets.BulkLabels.as_view(), name="project-bulk-labels"),
    path("projects/<slug:slug>/jobs/", jobs.ProjectJobs.as_view(), name="project-jobs"),
    path("datasets/<int:pk>/", datasets.DatasetDetail.as_view(), name="dataset-detail"),
    path("datasets/<int:pk>/reprocess/", ingestion.DatasetReprocess.as_view(), name="dataset-reprocess"),
    path("datasets/<int:pk>/images/", datasets.ImageList.as_view(), name="dataset-images"),
    path("datasets/<int:pk>/images/counts/", datasets.ImageCounts.as_view(), name="dataset-image-counts"),
    path("datasets/<int:pk>/images/ids/", datasets.ImageIds.as_view(), name="dataset-image-ids"),
    path("images/<int:pk>/", datasets.ImageDetail.as_view(), name="image-detail"),
    path("images/<int:pk>/label/", datasets.ImageLabel.as_view(), name="image-label"),
    path(
        "images/<int:pk>/labels/history/",
        label_history.ImageLabelHistory.as_view(),
        name="image-label-history",
    ),
    path(
        "projects/<slug:slug>/labels/restore/",
        label_history.RestoreLabels.as_view(),
        name="project-labels-restore",
    ),
    path("projects/<slug:slug>/labels/undo/", label_history.UndoLabels.as_view(), name="project-labels-undo"),
    path("images/<int:pk>/thumbnail/", datasets.thumbnail, name="image-thumbnail"),
    path(
        "thumbs/<int:dataset>/<int:index>/<int:revision>/<int:expires>/<str:sig>.png",
        media.signed_thumbnail,
        name="signed-thumbnail",
    ),
    path("projects/<slug:slug>/models/", classifier.ModelVersions.as_view(), name="project-models"),
    path(
        "projects/<slug:slug>/models/<int:number>/",
        classifier.ModelVersionDetail.as_view(),
        name="model-detail",
    ),
    path(
        "projects/<slug:slug>/models/<int:number>/activate/",
        classifier.Activate.as_view(),
        name="model-activate",
    ),
    path("projects/<slug:slug>/models/deactivate/", classifier.Deactivate.as_view(), name="model-deactivate"),
    path("projects/<slug:slug>/train/", classifier.Train.as_view(), name="project-train"),
    path("projects/<slug:slug>/predict/", classifier.Predict.as_view(), name="project-predict"),
    path("collections/", collections.Collections.as_view(), name="collections"),
    path("collections/<int:pk>/", collections.CollectionDetail.as_view(), name="collection-detail"),
    path("collections/<int:pk>/versions/", collections.Snapshot.as_view(), name="collection-snapshot"),
    path("collections/<int:pk>/export/", collections.CollectionExport.as_view(), name="collection-export"),
    path("collections/<int:pk>/share/", collections.Share.as_view(), name="collection-share"),
    path(
        "projects/<slug:slug>/training-collections/",
        collections.ProjectTrainingCollections.as_view(),
        name="project-training-collections",
    ),
    path(
        "projects/<slug:slug>/training-collections/<int:pk>/",
        collections.ProjectTrainingCollectionDetail.as_view(),
        name="project-training-collection",
    ),
    path("jobs/<int:pk>/", jobs.JobDetail.as_view(), name="job-detail"),
    path("jobs/<int:pk>/cancel/", jobs.JobCancel.as_view(), name="job-cancel"),
    path("jobs/<int:pk>/retry/", jobs.JobRetry.as_view(), name="job-retry"),
    path("projects/<slug:slug>/review/", review_api.Review.as_view(), name="project-review"),
    path("projects/<slug:slug>/annotators/", review_api.Annotators.as_view(), name="project-annotators"),
    path("images/<int:pk>/data/", image_detail.ImageData.as_view(), name="image-data"),
    path("datasets/<int:pk>/spectrum/", spectrum.DatasetSpectrum.as_view(), name="dataset-spectrum"),
    path("datasets/<int:pk>/next/", active_api.NextImages.as_view(), name="dataset-next"),
    path("projects/<slug:slug>/next/", active_api.NextImages.as_view(), name="project-next"),
    path("projects/<slug:slug>/live/", active_api.Live.as_view(), name="project-live"),
]
