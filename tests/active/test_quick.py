"""Learn while you label: quick updates, 'label next', live updates through the API."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from classifier import active, scoring
from classifier.models import HeldOutScore, ModelVersion, Prediction
from tests.classifier.test_train_and_score import make_datasets
from webapp.datasets import labels
from webapp.datasets.models import IonImage

pytestmark = pytest.mark.django_db


def names(capsys, *args) -> list[str]:
    call_command("next_images", *map(str, args))
    return capsys.readouterr().out.split("\n")[:-1]


def test_it_quick_updates_from_the_cli_and_export_reflects_it(project, user, tmp_path, capsys):
    dss = make_datasets(project, user, tmp_path, capsys, n=2, label=False)
    for ds in dss:
        assert active.embeddings_path(ds, None).exists()  # stored at scoring time
        for im, (_mz, lab) in list(zip(ds.images.order_by("index"), ds.truth.ions, strict=True))[:6]:
            labels.set_labels(project, [im], user, lab)
    call_command("train", "--project", project.slug, "--quick")
    out = capsys.readouterr().out
    assert "Quick update v1 from 12 labels" in out
    v = ModelVersion.objects.get(project=project)
    assert v.quick and v.is_active and v.held_out_by == "groups"
    assert HeldOutScore.objects.filter(model_version=v).count() == 12
    images = IonImage.objects.filter(dataset__project=project)
    assert all(im.prediction_version_id == v.pk for im in images)
    assert Prediction.objects.filter(model_version=v).count() == images.count()
    call_command("export_predictions", "--project", project.slug, str(tmp_path / "p.csv"))
    with open(tmp_path / "p.csv") as f:
        rows = list(csv.DictReader(f))
    assert {r["model_version"] for r in rows} == {"1"}
    truth = [lab for ds in dss for _mz, lab in ds.truth.ions]
    got = {(int(r["dataset_id"]), int(r["index"])): r["predicted"] for r in rows}
    pred = [got[(ds.pk, i)] for ds in dss for i in range(len(ds.truth.ions))]
    assert np.mean([p == t for p, t in zip(pred, truth, strict=True)]) > 0.75
    # No new label: nothing to update; a new label: a new quick version.
    call_command("train", "--project", project.slug, "--quick")
    assert ModelVersion.objects.filter(project=project).count() == 1


def test_it_never_suggests_labelled_images_with_any_strategy(project, user, tmp_path, capsys):
    [ds] = make_datasets(project, user, tmp_path, capsys, n=1, label=False)
    ims = list(ds.images.order_by("index"))
    for im, (_mz, lab) in list(zip(ims, ds.truth.ions, strict=True))[:5]:
        labels.set_labels(project, [im], user, lab)
    labelled = {im.name or im.display_name for im in ims[:5]}
    for strategy in ("active", "random", "probability"):
        got = names(capsys, "--dataset", ds.pk, "--n", 50, "--strategy", strategy)
        assert len(got) == len(ims) - 5 and len(set(got)) == len(got)
        assert not labelled & set(got)
        got_user = names(
            capsys, "--dataset", ds.pk, "--n", 3, "--user", user.username, "--strategy", strategy
        )
        assert len(got_user) == 3 and not labelled & set(got_user)
    # Most likely off-sample first, by the stored scores.
    got = names(capsys, "--dataset", ds.pk, "--n", 3, "--strategy", "probability")
    by_name = {im.name or im.display_name: im.probability for im in IonImage.objects.filter(dataset=ds)}
    rest = sorted((p for n, p in by_name.items() if n not in labelled), reverse=True)
    assert [by_name[n] for n in got] == rest[:3]
    with pytest.raises(CommandError):
        call_command("next_images", "--dataset", ds.pk, "--strategy", "best")


def test_quick_versions_never_overwrite_a_full_versions_metrics(project, user, tmp_path, capsys):
    make_datasets(project, user, tmp_path, capsys, n=2)
    call_command("train", "--project", project.slug, "--folds", "2", "--epochs", "1")
    full = ModelVersion.objects.get(project=project)
    metrics, held = (
        full.metrics,
        sorted(HeldOutScore.objects.filter(model_version=full).values_list("image_id", "probabilities")),
    )
    assert active.embeddings_path(full.project.datasets.first(), full.pk).exists()
    im = IonImage.objects.filter(dataset__project=project).first()
    labels.set_labels(project, [im], user, "on" if im.consensus == "off" else "off")
    call_command("train", "--project", project.slug, "--quick")
    quick = ModelVersion.objects.get(project=project, quick=True)
    assert quick.params["base"] == full.pk and quick.is_active and quick.number == 2
    full.refresh_from_db()
    assert not full.is_active and full.metrics == metrics
    assert (
        sorted(HeldOutScore.objects.filter(model_version=full).values_list("image_id", "probabilities"))
        == held
    )
    # The review reads the quick version's own held-out scores.
    from classifier import evaluation

    r = evaluation.accuracy(project, quick)
    assert r["all"]["held_out"]["n"] == 24
    # A full training supersedes it.
    call_command("train", "--project", project.slug, "--folds", "2", "--epochs", "1")
    assert ModelVersion.objects.get(project=project, is_active=True).quick is False


def test_it_learns_multilabel_from_the_first_labels_without_a_model(user, tmp_path, capsys):
    from tests.factories import ProjectFactory

    ml_project = ProjectFactory(owner=user, task="multilabel", classes=["off", "on"])
    [ds] = make_datasets(ml_project, user, tmp_path, capsys, n=1, label=False)
    assert active.embeddings_path(ds, None).exists()
    ims = list(ds.images.order_by("index"))
    assert all(im.probability is None for im in ims)  # no score before a model
    for im, (_mz, lab) in list(zip(ims, ds.truth.ions, strict=True))[:6]:
        labels.set_labels(ml_project, [im], user, lab)
    v = active.run_quick_update(ml_project)
    assert v.quick and v.held_out_by == "images"
    assert all(im.probabilities and len(im.probabilities) == 2 for im in ds.images.all())
    first = names(capsys, "--dataset", ds.pk, "--n", 4)
    assert len(first) == 4


def test_an_active_quick_version_scores_only_datasets_it_has_labels_from(project, user, tmp_path, capsys):
    [ds] = make_datasets(project, user, tmp_path, capsys, n=1)
    [other] = make_datasets(project, user, tmp_path, capsys, n=1, label=False)
    before = dict(other.images.values_list("pk", "probability"))
    v = active.run_quick_update(project)
    assert set(ds.images.values_list("prediction_version", flat=True)) == {v.pk}
    # A dataset without labels keeps the scorer the head was built on (here the default score).
    assert dict(other.images.values_list("pk", "probability")) == before
    [new] = make_datasets(project, user, tmp_path, capsys, n=1, label=False)
    assert scoring.score_dataset(new) == new.image_count
    assert set(new.images.values_list("prediction_version", flat=True)) == {None}
    im = new.images.first()
    labels.set_labels(project, [im], user, "off")
    assert scoring.score_dataset(new) == new.image_count
    assert set(new.images.values_list("prediction_version", flat=True)) == {v.pk}
    # Rescoring with the same version replaces its rows (no duplicate, no error).
    assert scoring.score_dataset(ds) == 12
    assert Prediction.objects.filter(image__dataset=ds, model_version=v).count() == 12


def test_it_learns_multiclass_from_two_labelled_classes_and_refuses_one(user, tmp_path, capsys):
    from tests.factories import ProjectFactory

    mc = ProjectFactory(owner=user, task="multiclass", classes=["off", "on", "other"])
    [ds] = make_datasets(mc, user, tmp_path, capsys, n=1, label=False)
    ims = list(ds.images.order_by("index"))
    first = [(im, lab) for im, (_mz, lab) in zip(ims, ds.truth.ions, strict=True)]
    off = [im for im, lab in first if lab == "off"][:3]
    labels.set_labels(mc, off, user, "off")
    with pytest.raises(CommandError, match="two classes"):
        call_command("train", "--project", mc.slug, "--quick")
    on = [im for im, lab in first if lab == "on"][:3]
    labels.set_labels(mc, on, user, "on")
    call_command("train", "--project", mc.slug, "--quick")
    v = ModelVersion.objects.get(project=mc, quick=True)
    assert v.held_out_by == "images" and len(v.metrics["thresholds"]) == 3
    probs = np.array([im.probabilities for im in ds.images.all()])
    assert probs.shape == (12, 3) and np.allclose(probs.sum(axis=1), 1) and probs[:, 2].max() < 1e-6
