"""IonImage.project (issue 13): every route that makes image rows copies the dataset's project,
and the project-wide gallery, now filtered on that column, lists the same images in the same
order as through the dataset."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db.models import F

from tests.datasets.helpers import REAL_FILES
from tests.factories import ProjectFactory
from tests.gallery_data import make_ready_dataset
from tests.shared_data import SHARED_DATA
from webapp.datasets import gallery
from webapp.datasets.models import Dataset, IonImage
from webapp.ingestion.rows import save_images

pytestmark = pytest.mark.django_db


def assert_every_image_in_its_datasets_project() -> None:
    assert IonImage.objects.exists()
    assert not IonImage.objects.exclude(project=F("dataset__project")).exists()


def test_it_copies_the_project_on_save_images_create_and_update(project, user):
    other = ProjectFactory(owner=user)
    ds = make_ready_dataset(project, n=12, user=user, thumbnails=False)
    ds2 = make_ready_dataset(other, n=7, user=user, thumbnails=False, seed=1)
    assert set(ds.images.values_list("project_id", flat=True)) == {project.pk}
    assert set(ds2.images.values_list("project_id", flat=True)) == {other.pk}
    rows = [{"mz": 50.0 + i, "name": f"new {i}"} for i in range(15)]  # 12 updated, 3 new
    save_images(ds, rows, height=16, width=20, metadata=ds.metadata)
    assert ds.images.count() == 15
    assert set(ds.images.values_list("project_id", flat=True)) == {project.pk}
    assert_every_image_in_its_datasets_project()


def test_it_copies_the_project_on_a_single_row(project, user):
    ds = Dataset.objects.create(project=project, name="one", kind=Dataset.Kind.IMAGES, created_by=user)
    im = IonImage.objects.create(dataset=ds, index=0)
    im.refresh_from_db()
    assert im.project_id == project.pk


def test_it_copies_the_project_on_imzml_and_picture_imports(project, capsys):
    call_command(
        "import_imzml", str(REAL_FILES["masspix"]), "--project", project.slug, "--top", "5", "--name", "L"
    )
    call_command(
        "import_images", str(SHARED_DATA / "ionimages" / "metaspace_examples"), "--project", project.slug
    )
    kinds = set(Dataset.objects.filter(project=project).values_list("kind", flat=True))
    assert kinds == {Dataset.Kind.IMZML, Dataset.Kind.IMAGES}
    assert IonImage.objects.filter(project=project).count() == sum(
        d.image_count for d in Dataset.objects.filter(project=project)
    )
    assert_every_image_in_its_datasets_project()


def through_the_dataset(project, ordering: str) -> list[int]:
    """The project gallery's query before issue 13: a join to the dataset."""
    qs = IonImage.objects.filter(dataset__project=project, dataset__status=Dataset.Status.READY)
    return list(gallery.ordered(qs, ordering).values_list("pk", flat=True))


def test_it_lists_the_project_gallery_as_through_the_dataset(api, project, user):
    # Two ready datasets (sharing indexes and m/z: ties), one not ready, one in another project.
    make_ready_dataset(project, n=30, user=user, thumbnails=False, seed=1)
    make_ready_dataset(project, n=20, user=user, thumbnails=False, seed=2, name="Second")
    busy = make_ready_dataset(project, n=10, user=user, thumbnails=False, seed=3, name="Busy")
    Dataset.objects.filter(pk=busy.pk).update(status=Dataset.Status.PROCESSING)
    make_ready_dataset(ProjectFactory(owner=user), n=10, user=user, thumbnails=False, seed=4)
    api.force_authenticate(user)
    for ordering in gallery.ORDERINGS:
        old = through_the_dataset(project, ordering)
        new = list(
            gallery.ordered(gallery.project_images(project), ordering, across_datasets=True).values_list(
                "pk", flat=True
            )
        )
        assert len(new) == 50 and set(new) == set(old)
        key = gallery.ORDERINGS[ordering]
        keyed = {im.pk: im for im in IonImage.objects.filter(pk__in=new)}
        fields = [k if isinstance(k, str) else k.expression.name for k in key]
        # Ties (the same key in two datasets) may come in either order; the keys may not.
        assert [tuple(getattr(keyed[i], f) for f in fields) for i in new] == [
            tuple(getattr(keyed[i], f) for f in fields) for i in old
        ]
        r = api.get(f"/api/projects/{project.slug}/images/?ordering={ordering}&page_size=100")
        assert r.status_code == 200
        assert [im["id"] for im in r.json()["results"]] == new
        assert r.json()["count"] == 50
    assert gallery.project_image_count(project) == 50
    counts = api.get(f"/api/projects/{project.slug}/images/counts/").json()
    assert counts["total"] == 50
