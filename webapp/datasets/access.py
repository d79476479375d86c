"""Datasets and images reached by id, checked through the project access helper."""

from __future__ import annotations

from django.http import Http404

from webapp.datasets.models import Dataset, IonImage
from webapp.projects.access import AccessQuery, check_role
from webapp.projects.models import Role

_DATASET = AccessQuery(lambda pk: Dataset.objects.select_related("project").filter(pk=pk), "project_id", -1)
# The model version too: the label API answers with its number from this row.
_IMAGE = AccessQuery(
    lambda pk: IonImage.objects.select_related("dataset__project", "prediction_version").filter(pk=pk),
    "dataset__project_id",
    -1,
)


def dataset_for(user, dataset_id, need: str = Role.VIEWER) -> Dataset:
    dataset = _DATASET.first(user, _int(dataset_id))
    if dataset is None:
        raise Http404("No such dataset.")
    dataset.project.user_role = check_role(dataset.viewer_role, need)
    return dataset


def image_for(user, image_id, need: str = Role.VIEWER) -> IonImage:
    image = _IMAGE.first(user, _int(image_id))
    if image is None:
        raise Http404("No such image.")
    image.dataset.project.user_role = check_role(image.viewer_role, need)
    return image


def _int(value) -> int:
    try:
        key = int(value)
    except (TypeError, ValueError):
        raise Http404("No such item.") from None
    # Beyond a 64-bit key nothing exists; the prepared query would pass it to the database,
    # which refuses it as an error (the ORM had answered "no row").
    if not -(2**63) <= key < 2**63:
        raise Http404("No such item.")
    return key
