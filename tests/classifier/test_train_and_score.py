from __future__ import annotations

import csv

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from classifier import training
from classifier.models import ModelVersion, Prediction
from tests.datasets.helpers import synthetic, write_mz_list
from tests.factories import ProjectFactory, UserFactory
from webapp.datasets import labels
from webapp.datasets.models import Dataset
from webapp.jobs.models import Job

pytestmark = pytest.mark.django_db


def make_datasets(project, user, tmp_path, capsys, n=3, label=True):
    out = []
    for i in range(n):
        truth = synthetic(tmp_path, f"s{i}", seed=200 + i, n_on=6, n_off=6, height=16, width=18)
        mz_list = write_mz_list(tmp_path / f"l{i}.csv", [m for m, _ in truth.ions])
        call_command("import_imzml", truth.imzml_path, "--project", project.slug, "--mz-list", str(mz_list))
        ds = Dataset.objects.get(pk=int(capsys.readouterr().out.split()[-1]))
        if label:
            for im, (_mz, lab) in zip(ds.images.order_by("index"), truth.ions, strict=True):
                labels.set_labels(project, [im], user, lab)
        ds.truth = truth
        out.append(ds)
    return out


def test_it_scores_new_datasets_with_the_default_and_calibrates_from_labels(project, user, tmp_path, capsys):
    [ds] = make_datasets(project, user, tmp_path, capsys, n=1, label=False)
    images = list(ds.images.order_by("index"))
    assert all(im.probability is not None and im.prediction_version is None for im in images)
    assert Prediction.objects.filter(image__dataset=ds, model_version__isnull=True).count() == len(images)
    truth = [lab for _, lab in ds.truth.ions]
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score([t == "off" for t in truth], [im.probability for im in images]) > 0.9
    raw = {p.image_id: p.probabilities[0] for p in Prediction.objects.filter(image__dataset=ds)}
    for im, lab in zip(images, truth, strict=True):
        labels.set_labels(project, [im], user, lab)
    call_command("predict", "--project", project.slug)
    assert "default score" in capsys.readouterr().out
    after = list(ds.images.order_by("index"))
    # Calibrated on the labels: the order is kept, the predicted classes now fit the labels.
    r = np.array([raw[im.pk] for im in after])
    c = np.array([im.probability for im in after])
    clearly_higher = r[:, None] > r[None, :] + 1e-4
    assert (c[:, None] >= c[None, :] - 1e-9)[clearly_higher].all()
    correct = sum(im.predicted == lab for im, lab in zip(after, truth, strict=True))
    assert correct >= len(truth) - 2


def test_it_trains_predicts_and_exports(project, user, tmp_path, capsys):
    make_datasets(project, user, tmp_path, capsys)
    call_command("train", "--project", project.slug, "--folds", "3", "--epochs", "2")
    out = capsys.readouterr().out
    assert "cross-validation grouped by dataset" in out and "precision" in out
    version = ModelVersion.objects.get(project=project)
    assert version.is_active and version.label_total == 36 and version.dataset_count == 3
    assert version.label_counts == {"off": 18, "on": 18} and len(version.label_hash) == 64
    m = version.metrics
    assert set(m["overall"]["per_class"]) == {"off", "on"} and len(m["per_group"]) == 3
    assert len(m["thresholds"]) == 2
    with pytest.raises(CommandError, match="not changed"):
        call_command("train", "--project", project.slug, "--folds", "3", "--epochs", "2")
    call_command("predict", "--project", project.slug)
    assert "model v1" in capsys.readouterr().out
    call_command("export_predictions", "--project", project.slug, str(tmp_path / "p.csv"))
    with open(tmp_path / "p.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 36
    assert list(rows[0]) == [
        "dataset_id",
        "dataset",
        "index",
        "mz",
        "name",
        "prob_off",
        "prob_on",
        "predicted",
        "label",
        "model_version",
    ]
    assert {r["model_version"] for r in rows} == {"1"} and all(r["label"] in ("on", "off") for r in rows)
    assert all(abs(float(r["prob_off"]) + float(r["prob_on"]) - 1) < 1e-3 for r in rows)


def test_it_falls_back_to_the_default_when_the_model_file_is_corrupt(project, user, tmp_path, capsys):
    make_datasets(project, user, tmp_path, capsys, n=2)
    call_command("train", "--project", project.slug, "--folds", "2", "--epochs", "1")
    capsys.readouterr()
    version = ModelVersion.objects.get(project=project)
    version.path.write_bytes(b"this is not a model")
    call_command("predict", "--project", project.slug)
    assert "could not be read" in capsys.readouterr().out
    assert (
        not Dataset.objects.get(pk=project.datasets.first().pk)
        .images.filter(prediction_version=version)
        .exists()
    )


def test_it_rolls_back_to_an_older_version(
    api, project, user, tmp_path, capsys, django_capture_on_commit_callbacks
):
    make_datasets(project, user, tmp_path, capsys, n=2)
    call_command("train", "--project", project.slug, "--folds", "2", "--epochs", "1")
    call_command("train", "--project", project.slug, "--folds", "2", "--epochs", "1", "--force")
    v1, v2 = ModelVersion.objects.order_by("number")
    assert v2.is_active and not v1.is_active
    api.force_authenticate(user)
    with django_capture_on_commit_callbacks(execute=True):
        r = api.post(f"/api/projects/{project.slug}/models/1/activate/")
    assert r.status_code == 202
    v1.refresh_from_db()
    assert v1.is_active and not ModelVersion.objects.get(pk=v2.pk).is_active
    assert project.datasets.first().images.filter(prediction_version=v1).exists()
    assert Prediction.objects.filter(model_version=v2).exists()  # history is kept per version


def test_it_trains_through_the_api_and_can_be_cancelled(
    api, project, user, tmp_path, capsys, django_capture_on_commit_callbacks
):
    make_datasets(project, user, tmp_path, capsys, n=2)
    viewer = UserFactory()
    from tests.factories import add_member

    add_member(project, viewer, "viewer")
    api.force_authenticate(viewer)
    assert api.post(f"/api/projects/{project.slug}/train/", {}, format="json").status_code == 403
    api.force_authenticate(user)
    run = training.start_training(project, user, {"folds": 2, "epochs": 1})
    Job.objects.filter(pk=run.job_id).update(cancel_requested=True)
    from classifier.tasks import train_model

    train_model.apply(args=[run.job_id])
    assert Job.objects.get(pk=run.job_id).status == "cancelled"
    assert not ModelVersion.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        r = api.post(f"/api/projects/{project.slug}/train/", {"folds": 2, "epochs": 1}, format="json")
    assert r.status_code == 202
    assert Job.objects.get(pk=r.json()["id"]).status == "done"
    assert ModelVersion.objects.get().is_active


def test_it_explains_why_it_cannot_train(project, user, tmp_path, capsys):
    make_datasets(project, user, tmp_path, capsys, n=1, label=False)
    with pytest.raises(CommandError, match="labelled images"):
        call_command("train", "--project", project.slug)


def test_it_trains_with_a_shared_collection_and_records_it(api, user, tmp_path, capsys):
    source = ProjectFactory(owner=user)
    make_datasets(source, user, tmp_path, capsys, n=2)
    api.force_authenticate(user)
    cid = api.post("/api/collections/", {"project": source.slug, "name": "Gold"}, format="json").json()["id"]
    bob = UserFactory()
    api.post(f"/api/collections/{cid}/share/", {"users": [bob.username]}, format="json")
    theirs = ProjectFactory(owner=bob)
    make_datasets(theirs, bob, tmp_path / "b", capsys, n=1)
    api.force_authenticate(bob)
    assert (
        api.post(
            f"/api/projects/{theirs.slug}/training-collections/", {"collection": cid}, format="json"
        ).status_code
        == 201
    )
    call_command("train", "--project", theirs.slug, "--folds", "3", "--epochs", "1")
    version = ModelVersion.objects.get(project=theirs)
    assert version.collections_used == [{"collection": cid, "name": "Gold", "version": 1, "items": 24}]
    assert version.dataset_count == 3 and version.metrics["overall"]["n"] == 36


def test_it_handles_multilabel_projects(user, tmp_path, capsys):
    project = ProjectFactory(owner=user, task="multilabel", classes="a,b,c")
    [ds] = make_datasets(project, user, tmp_path, capsys, n=1, label=False)
    rows = ["name,label"] + [f"{im.name},{'a b' if im.index % 2 else 'c'}" for im in ds.images.all()]
    (tmp_path / "ml.csv").write_text("\n".join(rows))
    call_command("import_labels", ds.pk, str(tmp_path / "ml.csv"))
    assert ds.images.get(index=1).consensus == "a b"
    make_datasets(project, user, tmp_path / "more", capsys, n=1, label=False)
    ds2 = project.datasets.exclude(pk=ds.pk).get()
    rows = ["name,label"] + [f"{im.name},{'b' if im.index % 2 else 'a c'}" for im in ds2.images.all()]
    (tmp_path / "ml2.csv").write_text("\n".join(rows))
    call_command("import_labels", ds2.pk, str(tmp_path / "ml2.csv"))
    call_command("train", "--project", project.slug, "--folds", "2", "--epochs", "1")
    call_command("export_predictions", "--project", project.slug, str(tmp_path / "p.csv"))
    with open(tmp_path / "p.csv") as f:
        rows = list(csv.DictReader(f))
    assert {"prob_a", "prob_b", "prob_c"} <= set(rows[0])
    assert all(set(r["predicted"].split()) <= {"a", "b", "c"} for r in rows)
    assert {r["label"] for r in rows} == {"a b", "c", "b", "a c"}
