"""A world with one project of each role and every kind of object a URL can point at."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.factories import ProjectFactory, UserFactory, add_member
from tests.gallery_data import make_ready_dataset


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@dataclass
class World:
    users: dict
    project: object
    dataset: object
    image: object
    job: object
    model_version: object
    collection: object
    training_collection: object | None
    membership: object  # the annotator's membership (what an owner would change)
    upload: object  # a resumable upload the owner started
    export_job: object  # a download being prepared


def make_world() -> World:
    from classifier.models import ModelVersion
    from webapp.jobs.models import Job

    owner, annotator, viewer, outsider = UserFactory(), UserFactory(), UserFactory(), UserFactory()
    project = ProjectFactory(owner=owner)
    membership = add_member(project, annotator, "annotator")
    add_member(project, viewer, "viewer")
    dataset = make_ready_dataset(project, n=6, user=owner)
    image = dataset.images.order_by("index").first()
    job = Job.objects.create(
        project=project, kind=Job.Kind.INGEST, target_id=dataset.pk, status=Job.Status.DONE, created_by=owner
    )
    version = ModelVersion.objects.create(
        project=project,
        number=1,
        arch="compact",
        task=project.task,
        classes=project.classes,
        file_name="v1.zip",
        created_by=owner,
    )
    collection = training = None
    try:
        from webapp.collections.models import Collection, TrainingCollection

        collection = Collection.objects.create(
            name="shared set", owner=owner, task=project.task, classes=project.classes, source_project=project
        )
        training = TrainingCollection.objects.create(project=project, collection=collection, added_by=owner)
    except ImportError:  # pragma: no cover - collections are written in parallel
        pass
    from webapp.ingestion import resumable

    upload = resumable.create(owner, project, length=10, filename="run.imzML")
    from webapp.datasets.export_jobs import export_path

    export_job = Job.objects.create(
        project=project, kind=Job.Kind.EXPORT, status=Job.Status.DONE, created_by=owner
    )
    export_path(export_job).parent.mkdir(parents=True, exist_ok=True)
    export_path(export_job).write_bytes(b"PK\x05\x06" + b"\0" * 18)  # an empty zip
    return World(
        upload=upload,
        export_job=export_job,
        users={"owner": owner, "annotator": annotator, "viewer": viewer, "outsider": outsider},
        project=project,
        dataset=dataset,
        image=image,
        job=job,
        model_version=version,
        collection=collection,
        training_collection=training,
        membership=membership,
    )


@pytest.fixture
def world(db) -> World:
    return make_world()
