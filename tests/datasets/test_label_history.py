"""Label history: every change kept, undo that survives reloads, restore to a time."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from tests.factories import ProjectFactory, UserFactory, add_member
from tests.gallery_data import make_ready_dataset
from webapp.datasets import label_history, labels
from webapp.datasets.models import Label, LabelEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def ds(project):
    return make_ready_dataset(project, n=30, thumbnails=False)


def _labels(ds, user) -> dict[int, str]:
    return dict(Label.objects.filter(image__dataset=ds, user=user).values_list("image_id", "value"))


def _shift_events(delta: timedelta) -> None:
    """Move every event so far into the past, so later ones are clearly after a chosen time."""
    for e in LabelEvent.objects.all():
        e.at -= delta
        e.save(update_fields=["at"])


def test_it_records_each_change_with_previous_value_and_source(ds, user):
    im = ds.images.first()
    labels.set_labels(ds.project, [im], user, "off", source=LabelEvent.Source.PAGE)
    labels.set_labels(ds.project, [im], user, "off")  # same value: not a change
    labels.set_labels(ds.project, [im], user, "on")
    labels.remove_labels(ds.project, [im], user)
    rows = [label_history.event_json(e) for e in label_history.for_image(im.pk)]
    assert [(r["previous"], r["label"], r["source"]) for r in rows] == [
        ("on", None, "api"),
        ("off", "on", "api"),
        (None, "off", "page"),
    ]
    assert all(r["user"] == user.username for r in rows)


def test_it_serves_history_newest_first_and_marks_page_calls(ds, user, api):
    im = ds.images.first()
    api.force_authenticate(user)
    assert (
        api.put(
            f"/api/images/{im.pk}/label/", {"label": "off"}, format="json", HTTP_X_IONSIEVE_SOURCE="page"
        ).status_code
        == 200
    )
    assert api.put(f"/api/images/{im.pk}/label/", {"label": "on"}, format="json").status_code == 200
    r = api.get(f"/api/images/{im.pk}/labels/history/")
    assert r.status_code == 200
    assert [(h["label"], h["previous"], h["source"]) for h in r.json()] == [
        ("on", "off", "api"),
        ("off", None, "page"),
    ]
    assert set(r.json()[0]) >= {"user", "label", "previous", "at", "source"}


def test_it_hides_history_from_non_members(ds, api):
    api.force_authenticate(UserFactory())
    assert api.get(f"/api/images/{ds.images.first().pk}/labels/history/").status_code == 404


def test_it_restores_a_mistaken_bulk_label_in_one_action(ds, user, api):
    ims = list(ds.images.order_by("index"))
    for im in ims[:10]:
        labels.set_labels(ds.project, [im], user, "on")
    _shift_events(timedelta(hours=1))
    checkpoint = timezone.now() - timedelta(minutes=30)
    labels.set_labels(ds.project, ims, user, "off")  # the mistake: all 30 images
    assert set(_labels(ds, user).values()) == {"off"}
    api.force_authenticate(user)
    r = api.post(
        f"/api/projects/{ds.project.slug}/labels/restore/", {"at": checkpoint.isoformat()}, format="json"
    )
    assert r.status_code == 200 and r.json() == {"changed": 30}
    after = _labels(ds, user)
    assert after == {im.pk: "on" for im in ims[:10]}
    assert (
        ds.images.filter(consensus="on").count() == 10
        and ds.images.filter(consensus__isnull=True).count() == 20
    )
    # The restore itself is in the history.
    assert label_history.for_image(ims[0].pk).first().source == "restore"
    assert label_history.for_image(ims[29].pk).first().value is None  # labelled only by the mistake


def test_it_restores_only_the_named_user(ds, user):
    bob = UserFactory()
    add_member(ds.project, bob, "annotator")
    im = ds.images.first()
    labels.set_labels(ds.project, [im], user, "on")
    labels.set_labels(ds.project, [im], bob, "on")
    _shift_events(timedelta(hours=1))
    checkpoint = timezone.now() - timedelta(minutes=30)
    labels.set_labels(ds.project, [im], user, "off")
    labels.set_labels(ds.project, [im], bob, "off")
    assert label_history.restore(ds.project, checkpoint, user=bob, actor=user) == 1
    assert Label.objects.get(image=im, user=bob).value == "on"
    assert Label.objects.get(image=im, user=user).value == "off"
    e = label_history.for_image(im.pk).first()
    assert (e.user, e.actor, e.source) == (bob, user, "restore")


def test_it_lets_only_owners_restore(ds, user, api):
    annotator = UserFactory()
    add_member(ds.project, annotator, "annotator")
    api.force_authenticate(annotator)
    r = api.post(
        f"/api/projects/{ds.project.slug}/labels/restore/", {"at": timezone.now().isoformat()}, format="json"
    )
    assert r.status_code == 403
    api.force_authenticate(user)
    r = api.post(
        f"/api/projects/{ds.project.slug}/labels/restore/",
        {"at": timezone.now().isoformat(), "user": "nobody-here"},
        format="json",
    )
    assert r.status_code == 400 and "nobody-here" in r.json()["user"][0]


def test_it_undoes_the_last_change_from_the_server_and_walks_back(ds, user, api):
    a, b = list(ds.images.order_by("index")[:2])
    labels.set_labels(ds.project, [a], user, "on")
    labels.set_labels(ds.project, [a, b], user, "off")  # one bulk action
    api.force_authenticate(user)
    url = f"/api/projects/{ds.project.slug}/labels/undo/"
    assert api.post(url).json() == {"changed": 2, "images": sorted([a.pk, b.pk])}
    assert _labels(ds, user) == {a.pk: "on"}
    assert api.post(url).json() == {"changed": 1, "images": [a.pk]}
    assert _labels(ds, user) == {}
    assert api.post(url).json() == {"changed": 0, "images": []}


def test_it_does_not_undo_over_someone_elses_later_change(ds, user):
    im = ds.images.first()
    labels.set_labels(ds.project, [im], user, "on")
    bob = UserFactory()
    add_member(ds.project, bob, "owner")
    # Bob (an owner) restores user's labels to "nothing" after user's change.
    labels.set_labels(ds.project, [im], user, "off", actor=bob, source=LabelEvent.Source.RESTORE)
    assert label_history.undo_last(ds.project, user) == []
    assert Label.objects.get(image=im, user=user).value == "off"


def test_it_restores_from_the_command_line(ds, user, capsys):
    im = ds.images.first()
    labels.set_labels(ds.project, [im], user, "on")
    _shift_events(timedelta(hours=1))
    checkpoint = (timezone.now() - timedelta(minutes=30)).isoformat()
    labels.set_labels(ds.project, [im], user, "off")
    call_command("restore_labels", "--project", ds.project.slug, "--at", checkpoint, "--user", user.username)
    assert "1 labels changed" in capsys.readouterr().out
    assert Label.objects.get(image=im, user=user).value == "on"
    with pytest.raises(CommandError, match="not an ISO time"):
        call_command("restore_labels", "--project", ds.project.slug, "--at", "yesterday")


def test_it_keeps_other_classes_when_multilabel_history_is_restored(user):
    project = ProjectFactory(owner=user, task="multilabel", classes="nucleus,cytosol,er")
    ds = make_ready_dataset(project, n=5, thumbnails=False, probs=np.full((5, 3), 1 / 3))
    im = ds.images.first()
    labels.set_labels(project, [im], user, ["nucleus", "er"])
    _shift_events(timedelta(hours=1))
    checkpoint = timezone.now() - timedelta(minutes=30)
    labels.set_labels(project, [im], user, ["cytosol"])
    assert label_history.restore(project, checkpoint) == 1
    assert Label.objects.get(image=im, user=user).value == "nucleus er"


def test_it_shows_the_audit_page_and_restores_from_it(ds, user, client):
    im = ds.images.first()
    labels.set_labels(ds.project, [im], user, "on", source=LabelEvent.Source.PAGE)
    _shift_events(timedelta(hours=1))
    checkpoint = timezone.now() - timedelta(minutes=30)
    labels.set_labels(ds.project, list(ds.images.all()), user, "off")
    client.force_login(user)
    url = f"/p/{ds.project.slug}/labels/"
    page = client.get(url).content.decode()
    assert "Restore labels" in page and page.count("<tr>") >= 31  # header + 30 bulk changes + 1
    r = client.post(url, {"at": checkpoint.strftime("%Y-%m-%dT%H:%M:%S"), "user": user.username})
    assert r.status_code == 302
    assert _labels(ds, user) == {im.pk: "on"}
    assert "30 labels changed back" in client.get(url).content.decode()


def test_it_shows_the_audit_page_read_only_to_viewers(ds, user, client):
    viewer = UserFactory()
    add_member(ds.project, viewer, "viewer")
    labels.set_labels(ds.project, [ds.images.first()], user, "on")
    client.force_login(viewer)
    url = f"/p/{ds.project.slug}/labels/"
    page = client.get(url).content.decode()
    assert "Restore labels" not in page and user.username in page
    assert client.post(url, {"at": timezone.now().isoformat()}).status_code == 403
