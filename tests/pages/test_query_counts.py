"""Database queries per request stay bounded, whatever the size of the page, the dataset, the
number of annotators or of labels: a query per row (N + 1) fails these tests.

Each request is measured twice, on a small and on a larger world (more images, labels,
annotators and datasets): the bound is the same for both, so a count that grows with the
data fails even where it would still be under the bound.
"""

from __future__ import annotations

import pytest
from django.utils import timezone

from classifier.models import ModelVersion
from tests.factories import UserFactory, add_member
from tests.gallery_data import make_ready_dataset
from webapp.datasets.labels import set_labels
from webapp.jobs.models import Job

pytestmark = pytest.mark.django_db

# Upper bounds = the counts when they were set: every request starts with the session and the
# user (2) and the permission check (the object with its project and the caller's role: 1).
BOUNDS = {
    "gallery API page": 5,  # + the page of images, then the caller's labels for those 100 ids
    "counts": 6,  # + one aggregate for every plain filter, "labelled by me", "by others"
    "label PUT": 10,  # + lock, every label of the image (read after the lock: see
    #                   labels._lock_and_read), upsert, event, the consensus's update (the answer
    #                   is built from the row in hand); 2 of them are the test's SAVEPOINT + RELEASE
    "project page": 9,  # + datasets, versions (the active one among them), running and failed jobs,
    #                    collections, members
    "gallery page": 3,  # nothing else: the page script asks the API
    "image page": 6,  # + everyone's labels (mine among them), previous and next image
}


def world(project, user, images: int, annotators: int, datasets: int) -> dict:
    people = [UserFactory() for _ in range(annotators)]
    for p in people:
        add_member(project, p, "annotator")
    made = [
        make_ready_dataset(project, n=images, user=user, name=f"d{d}", seed=d, thumbnails=False)
        for d in range(datasets)
    ]
    ds = made[0]
    ims = list(ds.images.order_by("index"))
    for i, p in enumerate(people):
        set_labels(project, ims[i::2], p, project.classes[i % 2])
    set_labels(project, ims[::3], user, project.classes[0])
    # What the project page lists: model versions, running and recently failed jobs.
    for n in range(1, datasets + 1):
        ModelVersion.objects.create(
            project=project,
            number=n,
            arch="compact",
            task=project.task,
            classes=project.classes,
            file_name=f"v{n}.zip",
            created_by=user,
            metrics={"overall": {"f1": 0.9, "roc_auc": 0.95}},
        )
        for status in (Job.Status.QUEUED, Job.Status.RUNNING, Job.Status.FAILED):
            Job.objects.create(
                project=project,
                kind=Job.Kind.INGEST,
                target_id=made[n - 1].pk,
                status=status,
                created_by=user,
                finished_at=timezone.now() if status == Job.Status.FAILED else None,
            )
    return {"dataset": ds, "image": ims[1]}


def requests_of(client, project, w) -> dict:
    ds, im = w["dataset"], w["image"]
    turn = iter(range(10**6))

    def label():  # a real change every time: off, on, off...
        return client.put(
            f"/api/images/{im.pk}/label/",
            {"label": project.classes[next(turn) % 2]},
            content_type="application/json",
        )

    return {
        "gallery API page": lambda: client.get(f"/api/datasets/{ds.pk}/images/?ordering=-probability&page=1"),
        "counts": lambda: client.get(f"/api/datasets/{ds.pk}/images/counts/"),
        "label PUT": label,
        "project page": lambda: client.get(f"/p/{project.slug}/"),
        "gallery page": lambda: client.get(f"/datasets/{ds.pk}/gallery/"),
        "image page": lambda: client.get(f"/images/{im.pk}/"),
    }


@pytest.mark.parametrize("size", [(12, 1, 1), (150, 6, 3)], ids=["small", "larger"])
@pytest.mark.parametrize("name", list(BOUNDS))
def test_it_bounds_the_queries_of_each_request(
    client, project, user, django_assert_max_num_queries, name, size
):
    w = world(project, user, *size)
    client.force_login(user)
    call = requests_of(client, project, w)[name]
    call()  # warm: first-request work (content types, caches) is not the steady state
    with django_assert_max_num_queries(BOUNDS[name]):
        r = call()
    assert r.status_code == 200, r.content[:300]
