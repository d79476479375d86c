"""What the load work changed on the hot paths (issue 14, "fast under load") keeps giving the
same answers: signed URLs, unfiltered gallery pages without a FilterSet, the caller's role read
with the object, the label lock, sessions from the shared cache."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils.crypto import salted_hmac

from tests.factories import UserFactory, add_member
from tests.gallery_data import make_ready_dataset
from webapp.datasets import gallery, media
from webapp.datasets.labels import remove_labels, set_labels

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def dataset(project, user):
    return make_ready_dataset(project, n=30, user=user, thumbnails=False)


def test_it_signs_thumbnails_exactly_as_salted_hmac_did(settings):
    for args in [(1, 2, 3, 4), (99, 0, 7, 1_800_000_000)]:
        old = salted_hmac(media.SALT, ":".join(map(str, args)), algorithm="sha256").hexdigest()[:32]
        assert media.signature(*args) == old
    settings.SECRET_KEY = "another key" * 5  # the derived key follows SECRET_KEY
    assert (
        media.signature(1, 2, 3, 4)
        == salted_hmac(media.SALT, "1:2:3:4", secret=settings.SECRET_KEY, algorithm="sha256").hexdigest()[:32]
    )


def test_it_builds_no_filterset_for_an_unfiltered_page_and_still_filters(
    client, user, project, dataset, monkeypatch
):
    made = []
    real_init = gallery.ImageFilter.__init__

    def counting_init(self, *args, **kwargs):
        made.append(1)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(gallery.ImageFilter, "__init__", counting_init)
    images = list(dataset.images.order_by("index"))
    set_labels(project, images[:4], user, project.classes[0])
    client.force_login(user)
    url = f"/api/datasets/{dataset.pk}/images/"
    everything = client.get(url, {"ordering": "index"}).json()
    assert (everything["count"], made) == (30, [])
    labelled = client.get(url, {"ordering": "index", "labelled": "true"}).json()
    assert made == [1]
    assert [i["id"] for i in labelled["results"]] == [im.pk for im in images[:4]]
    assert client.get(url, {"prob_min": "not a number"}).status_code == 400


def test_it_reads_the_callers_role_with_the_object(client, user, project, dataset):
    viewer, outsider = UserFactory(), UserFactory()
    add_member(project, viewer, "viewer")
    image = dataset.images.first()
    put = {"path": f"/api/images/{image.pk}/label/", "data": {"label": project.classes[0]}}
    for who, status in [(user, 200), (viewer, 403), (outsider, 404)]:
        client.force_login(who)
        assert client.put(**put, content_type="application/json").status_code == status, who
        assert client.get(f"/api/datasets/{dataset.pk}/images/").status_code == (
            404 if who == outsider else 200
        )
        assert client.get(f"/p/{project.slug}/").status_code == (404 if who == outsider else 200)


def test_it_locks_only_the_labelled_images_not_their_dataset(project, user, dataset):
    # The model's default ordering goes through the dataset; a FOR UPDATE over that join also
    # locked the dataset's row, so every label write of a dataset queued behind the one before.
    images = list(dataset.images.order_by("index")[:3])
    with CaptureQueriesContext(connection) as q:
        set_labels(project, images, user, project.classes[1])
    lock = [x["sql"] for x in q.captured_queries if 'FROM "datasets_ionimage"' in x["sql"]]
    assert len(lock) == 1 and "datasets_dataset" not in lock[0], lock
    assert dataset.images.filter(consensus=project.classes[1]).count() == 3


def test_it_keeps_consensus_and_counts_right_from_the_labels_read_under_the_lock(project, user, dataset):
    # The labels are read with the lock, before this write; the stored consensus is computed
    # from them with the write applied. Check it against every case the write can meet.
    a, b, c = user, UserFactory(), UserFactory()
    for who in (b, c):
        add_member(project, who, "annotator")
    off, on = project.classes[0], project.classes[1]
    im = dataset.images.order_by("index")[0]

    def state():
        im.refresh_from_db()
        return im.consensus, im.users_disagree, im.label_count

    set_labels(project, [im], a, off)
    assert state() == (off, False, 1)
    set_labels(project, [im], b, on)
    assert state() == (None, True, 2)  # a tie
    set_labels(project, [im], c, on)
    assert state() == (on, True, 3)
    set_labels(project, [im], c, None, unsure=True)  # unsure: counted, not voting
    assert state() == (None, True, 3)
    remove_labels(project, [im], b)
    assert state() == (off, False, 2)
    set_labels(project, [im], a, off)  # no change: nothing written
    assert state() == (off, False, 2)
    many = list(dataset.images.order_by("index")[1:6])
    set_labels(project, many, b, on)
    set_labels(project, many[:2], a, off)
    got = {
        i.pk: (i.consensus, i.users_disagree, i.label_count)
        for i in dataset.images.filter(pk__in=[m.pk for m in many])
    }
    assert got == {m.pk: ((None, True, 2) if k < 2 else (on, False, 1)) for k, m in enumerate(many)}


def settings_value(name: str, **env: str) -> str:
    code = f"import django; django.setup(); from django.conf import settings; print(settings.{name})"
    full = {**os.environ, "DJANGO_SETTINGS_MODULE": "webapp.settings", **env}
    full.pop("CACHE_URL", None) if "CACHE_URL" not in env else None
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=full, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-500:]
    return out.stdout.strip()


def test_it_reads_sessions_from_the_cache_only_when_the_cache_is_shared():
    assert settings_value("SESSION_ENGINE") == "django.contrib.sessions.backends.db"
    shared = settings_value("SESSION_ENGINE", CACHE_URL="redis://127.0.0.1:6379/15")
    assert shared == "django.contrib.sessions.backends.cached_db"


@pytest.mark.parametrize("task, classes", [("binary", "off,on"), ("multilabel", "a,b,c")])
def test_it_answers_a_label_write_exactly_as_the_image_reads_afterwards(client, user, task, classes):
    from classifier.models import ModelVersion
    from tests.factories import ProjectFactory
    from webapp.datasets.models import IonImage

    project = ProjectFactory(owner=user, task=task, classes=classes)
    other = UserFactory()
    add_member(project, other, "annotator")
    k = len(project.classes)
    probs = np.full((4, k), 1 / k) if task != "binary" else None
    ds = make_ready_dataset(project, n=4, user=user, thumbnails=False, probs=probs)
    im = ds.images.order_by("index")[1]
    version = ModelVersion.objects.create(
        project=project, number=3, arch="compact", task=task, classes=project.classes, file_name="v3.zip"
    )
    IonImage.objects.filter(pk=im.pk).update(prediction_version=version)
    set_labels(project, [im], other, project.classes[1])
    client.force_login(user)
    url = f"/api/images/{im.pk}/label/"
    writes = [
        {"label": project.classes[0]},
        {"label": project.classes[1]},  # agrees with the other annotator now
        {"unsure": True},
        {"label": project.classes[:2] if task == "multilabel" else project.classes[0], "unsure": True},
        {"label": " ".join(project.classes[:2]) if task == "multilabel" else project.classes[1]},
        {"label": project.classes[1]} if task == "binary" else {"label": [project.classes[2]]},
    ]
    for body in [*writes, None]:
        if body is None:
            answer = client.delete(url)
        else:
            answer = client.put(url, body, content_type="application/json")
        assert answer.status_code == 200, answer.content
        after = client.get(f"/api/images/{im.pk}/").json()
        assert answer.json() == after, body
        assert after["model_version"] == 3
