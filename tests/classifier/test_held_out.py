from __future__ import annotations

import json

import numpy as np
import pytest
from django.core.management import call_command

from classifier import evaluation
from classifier.models import HeldOutScore, ModelVersion, Prediction
from tests.classifier.test_train_and_score import make_datasets
from webapp.datasets import labels

pytestmark = pytest.mark.django_db

FLIP = {"off": "on", "on": "off"}


def test_it_never_scores_a_dataset_held_out_by_a_model_that_saw_it(project, user, tmp_path, capsys):
    """Three datasets labelled truthfully and one with every label inverted: out of fold, the
    inverted dataset is scored by models trained on the other three only, so its held-out
    scores disagree with its labels (a model that had seen them could learn them)."""
    *truthful, inverted = make_datasets(project, user, tmp_path, capsys, n=4, label=False)
    for ds in truthful:
        for im, (_mz, lab) in zip(ds.images.order_by("index"), ds.truth.ions, strict=True):
            labels.set_labels(project, [im], user, lab)
    for im, (_mz, lab) in zip(inverted.images.order_by("index"), inverted.truth.ions, strict=True):
        labels.set_labels(project, [im], user, FLIP[lab])
    call_command("train", "--project", project.slug, "--folds", "4", "--epochs", "2")
    capsys.readouterr()
    version = ModelVersion.objects.get(project=project)
    assert version.labels_at is not None and version.held_out_by == "groups"
    # Each fold holds out whole datasets: no dataset's images are split between folds.
    folds = {}
    for ds_id, fold in HeldOutScore.objects.filter(model_version=version).values_list(
        "image__dataset_id", "fold"
    ):
        folds.setdefault(ds_id, set()).add(fold)
    assert len(folds) == 4 and all(len(f) == 1 for f in folds.values())
    assert len({next(iter(f)) for f in folds.values()}) == 4

    r = evaluation.accuracy(project, version)
    rows = {d["dataset_id"]: d for d in r["datasets"]}
    bad = rows[inverted.pk]["held_out"]
    assert bad["n"] == inverted.images.count()
    assert bad["auc"] < 0.5 and bad["accuracy"] < 0.5  # disagrees with its (inverted) labels
    for ds in truthful:
        good = rows[ds.pk]["held_out"]
        assert good["n"] == 12 and good["auc"] > 0.5
    assert r["all"]["held_out"]["n"] == 48 and r["all"]["training_fit"]["n"] == 48
    assert r["all"]["since_training"]["n"] == 0

    # Labels after training: since_training counts them, held_out keeps the training-time count.
    im = inverted.images.order_by("index").first()
    labels.set_labels(project, [im], user, FLIP[im.consensus])
    after = {d["dataset_id"]: d for d in evaluation.accuracy(project, version)["datasets"]}
    assert after[inverted.pk]["since_training"]["n"] == 1
    assert after[inverted.pk]["held_out"]["n"] == 12

    # The default score was fitted to the same training labels, and keeps scoring new datasets.
    default = evaluation.accuracy(project, None)
    assert default["all"]["held_out"]["n"] == 48 and default["all"]["since_training"]["n"] == 1
    [later] = make_datasets(project, user, tmp_path / "later", capsys, n=1)
    assert Prediction.objects.filter(image__dataset=later, model_version__isnull=True).count() == 12
    assert evaluation.accuracy(project, None)["all"]["since_training"]["n"] == 13
    assert evaluation.accuracy(project, version)["all"]["since_training"]["n"] == 13

    call_command("review_accuracy", "--project", project.slug, "--json")
    printed = json.loads(capsys.readouterr().out)
    assert printed["version"] == "1"
    assert {d["dataset_id"]: d["held_out"]["n"] for d in printed["datasets"]}[inverted.pk] == 12
    assert np.isclose(
        printed["all"]["held_out"]["auc"], evaluation.accuracy(project, version)["all"]["held_out"]["auc"]
    )


def test_it_keeps_held_out_predictions_for_multiclass_projects(user, tmp_path, capsys):
    from tests.factories import ProjectFactory

    project = ProjectFactory(owner=user, task="multiclass", classes="a,b,c")
    dsets = make_datasets(project, user, tmp_path, capsys, n=2, label=False)
    for ds in dsets:
        for im in ds.images.order_by("index"):
            labels.set_labels(project, [im], user, "abc"[im.index % 3])
    call_command("train", "--project", project.slug, "--folds", "2", "--epochs", "1")
    capsys.readouterr()
    version = ModelVersion.objects.get(project=project)
    r = evaluation.accuracy(project, version)
    assert r["all"]["held_out"]["n"] == 24 and r["all"]["training_fit"]["n"] == 24
    assert set(r["all"]["held_out"]["per_class"]) == {"a", "b", "c"}
    assert r["all"]["held_out"]["f1"] is not None and r["confusion"] is not None


def test_it_keeps_copies_of_a_dataset_in_its_own_collection_in_the_same_fold_group(
    api, project, user, tmp_path, capsys
):
    from classifier import training

    dsets = make_datasets(project, user, tmp_path, capsys, n=2)
    api.force_authenticate(user)
    cid = api.post("/api/collections/", {"project": project.slug, "name": "Own"}, format="json").json()["id"]
    assert (
        api.post(
            f"/api/projects/{project.slug}/training-collections/", {"collection": cid}, format="json"
        ).status_code
        == 201
    )
    images, xs, _, _, groups, used = training.training_data(project, context=False)
    assert len(xs) == 48 and used and used[0]["collection"] == cid
    # The collection's copies of dataset d join group d: held out together with the originals.
    assert set(groups) == {f"d{ds.pk}" for ds in dsets}
    assert groups[24:].count(f"d{dsets[0].pk}") == 12
