from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
from django.core.management import call_command
from django.utils import timezone
from sklearn import metrics as skm

from classifier import evaluation, scoring
from classifier.models import HeldOutScore, ModelVersion
from ionsieve_core.ml.calibration import apply_calibration, best_f1_threshold, fit_calibration
from tests.factories import ProjectFactory, UserFactory, add_member
from tests.gallery_data import make_ready_dataset, set_probabilities
from webapp.datasets.labels import set_labels
from webapp.datasets.models import Label

pytestmark = pytest.mark.django_db

S_KEYS = {"n", "f1", "f1_ci", "precision", "recall", "accuracy", "auc"}


def label(project, ds, user, values: dict[int, str]):
    for index, value in values.items():
        set_labels(project, [ds.images.get(index=index)], user, value)


def backdate(images, when):
    Label.objects.filter(image__in=images).update(created_at=when, updated_at=when)


def trained_version(project, number, snapshot: dict, when, active=False, thresholds=(0.5, 0.5)):
    """A version whose training labels were read at `when`; snapshot: image -> (label, held-out p(off))."""
    v = ModelVersion.objects.create(
        project=project,
        number=number,
        arch="compact",
        task=project.task,
        classes=project.classes,
        is_active=active,
        labels_at=when,
        held_out_by="groups",
        metrics={"thresholds": list(thresholds)},
    )
    HeldOutScore.objects.bulk_create(
        [
            HeldOutScore(
                image=im, model_version=v, label=lab, probabilities=[p, 1 - p], thresholds=[0.5, 0.5]
            )
            for im, (lab, p) in snapshot.items()
        ]
    )
    return v


@pytest.fixture
def trained(project, user):
    """Two datasets labelled before training (snapshot kept), then labels after training."""
    rng = np.random.default_rng(1)
    a = make_ready_dataset(project, n=20, name="A", thumbnails=False, seed=1)
    b = make_ready_dataset(project, n=10, name="B", thumbnails=False, seed=2)
    la = {i: ("off" if i % 3 else "on") for i in range(12)}
    lb = {i: ("on" if i % 2 else "off") for i in range(8)}
    label(project, a, user, la)
    label(project, b, user, lb)
    before = timezone.now() - dt.timedelta(hours=2)
    backdate(list(a.images.all()) + list(b.images.all()), before)
    when = timezone.now() - dt.timedelta(hours=1)
    held = {
        im: rng.random() for im in list(a.images.filter(index__lt=12)) + list(b.images.filter(index__lt=8))
    }
    snapshot = {im: (im.consensus, p) for im, p in held.items()}
    v = trained_version(project, 1, snapshot, when, active=True)
    fit = rng.random(20), rng.random(10)
    set_probabilities(project, a, fit[0], version=v)
    set_probabilities(project, b, fit[1], version=v)
    # After training: 4 new labels in A and one training image of B relabelled.
    label(project, a, user, {12: "off", 13: "on", 14: "off", 15: "off"})
    relabelled = b.images.get(index=0)
    label(project, b, user, {0: "on"})
    return {"a": a, "b": b, "la": la, "lb": lb, "v": v, "held": held, "fit": fit, "relabelled": relabelled}


def test_it_splits_held_out_since_training_and_training_fit_by_timestamps(project, trained):
    r = evaluation.accuracy(project, trained["v"])
    rows = {d["dataset"]: d for d in r["datasets"]}
    # held_out.n = images labelled at training time; since_training.n = labels given after it.
    assert rows["A"]["held_out"]["n"] == 12 and rows["B"]["held_out"]["n"] == 8
    assert rows["A"]["since_training"]["n"] == 4 and rows["B"]["since_training"]["n"] == 1
    assert rows["A"]["training_fit"]["n"] == 12 and rows["B"]["training_fit"]["n"] == 8
    assert r["all"]["held_out"]["n"] == 20 and r["all"]["since_training"]["n"] == 5
    sets, _, _ = evaluation.scored_sets(project, trained["v"])
    since = sets["since_training"]
    # The relabelled image counts since training with its new label, and stays held out with the old one.
    i = since.image_ids.index(trained["relabelled"].pk)
    assert since.labels[i] == "on"
    j = sets["held_out"].image_ids.index(trained["relabelled"].pk)
    assert sets["held_out"].labels[j] == "off"


def test_it_matches_sklearn_on_each_measure(project, trained):
    r = evaluation.accuracy(project, trained["v"])
    a = {d["dataset"]: d for d in r["datasets"]}["A"]
    ims = {im.pk: im for im in trained["a"].images.all()}
    # held out: the stored out-of-fold probabilities against the labels at training time.
    y = np.array([trained["la"][ims[im.pk].index] == "off" for im in trained["held"] if im.pk in ims])
    p = np.array([pr for im, pr in trained["held"].items() if im.pk in ims])
    pred = p >= 0.5
    s = a["held_out"]
    assert s["f1"] == pytest.approx(skm.f1_score(y, pred), abs=1e-5)
    assert s["precision"] == pytest.approx(skm.precision_score(y, pred), abs=1e-5)
    assert s["recall"] == pytest.approx(skm.recall_score(y, pred), abs=1e-5)
    assert s["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), abs=1e-5)
    assert s["auc"] == pytest.approx(skm.roc_auc_score(y, p), abs=1e-5)
    assert s["f1_ci"][0] <= s["f1"] <= s["f1_ci"][1]
    # training fit: the version's own predictions on the same images and labels.
    fit = trained["fit"][0][:12]
    assert a["training_fit"]["auc"] == pytest.approx(skm.roc_auc_score(y, fit), abs=1e-5)
    # since training: the 4 new labels of A, scored by the version.
    y_new = np.array([True, False, True, True])
    p_new = trained["fit"][0][12:16]
    assert a["since_training"]["accuracy"] == pytest.approx(skm.accuracy_score(y_new, p_new >= 0.5), abs=1e-5)


def test_it_narrows_intervals_as_labels_grow():
    from ionsieve_core.ml.metrics import measure

    widths = []
    for reps in (1, 4, 16):
        y = np.tile([0, 0, 0, 1, 1, 1, 1, 0, 1, 0, 0, 1], reps)
        p = np.tile([0.9, 0.8, 0.3, 0.2, 0.1, 0.6, 0.3, 0.7, 0.2, 0.9, 0.6, 0.4], reps)
        m = measure(y, np.c_[p, 1 - p], np.where(p >= 0.5, 0, 1), "binary", ["off", "on"])
        widths.append(
            [m[k][1] - m[k][0] for k in ("f1_ci", "precision_ci", "recall_ci", "accuracy_ci", "auc_ci")]
        )
        assert m["f1_ci"][0] <= m["f1"] <= m["f1_ci"][1]
    widths = np.array(widths)
    assert (widths[1] < widths[0]).all() and (widths[2] < widths[1]).all()


def test_it_reads_twelve_labels_with_a_wide_interval():
    from ionsieve_core.ml.metrics import measure

    y = np.array([0] * 6 + [1] * 6)
    p = np.array([0.9, 0.8, 0.9, 0.7, 0.6, 0.4, 0.1, 0.2, 0.3, 0.1, 0.2, 0.1])
    m = measure(y, np.c_[p, 1 - p], np.where(p >= 0.5, 0, 1), "binary", ["off", "on"])
    assert m["f1"] == pytest.approx(skm.f1_score(y == 0, p >= 0.5))
    assert m["f1_ci"][1] - m["f1_ci"][0] > 0.3  # 12 labels cannot pin an F1 down


def test_it_flags_datasets_below_target_or_too_small_to_tell(project, user):
    good = make_ready_dataset(project, n=120, name="big", thumbnails=False, seed=3)
    small = make_ready_dataset(project, n=6, name="small", thumbnails=False, seed=4)
    bad = make_ready_dataset(project, n=40, name="bad", thumbnails=False, seed=5)
    snapshot = {}
    for ds, wrong in ((good, 0), (small, 0), (bad, 10)):
        for im in ds.images.all():
            truth = "off" if im.index % 2 else "on"
            set_labels(project, [im], user, truth)
            right = im.index >= wrong
            snapshot[im] = (truth, 0.9 if (truth == "off") == right else 0.1)
    backdate(list(Label.objects.values_list("image", flat=True)), timezone.now() - dt.timedelta(hours=1))
    v = trained_version(project, 1, snapshot, timezone.now())
    flags = {d["dataset"]: d["flag"] for d in evaluation.accuracy(project, v)["datasets"]}
    assert flags["big"] is None
    assert "Too few labels" in flags["small"]
    assert "below 0.90" in flags["bad"]


def test_it_measures_the_default_score_with_a_cross_fitted_calibration(project, user):
    rng = np.random.default_rng(7)
    # Raw default scores rank well in both datasets but with different offsets.
    dsets, raws, truths = [], [], []
    for k, shift in enumerate((0.0, 0.3)):
        truth = np.array([i % 2 for i in range(30)])  # 0 = off
        raw = np.clip(np.where(truth == 0, 0.45, 0.2) + shift + rng.normal(0, 0.08, 30), 0.01, 0.99)
        ds = make_ready_dataset(project, n=30, name=f"D{k}", probs=raw, thumbnails=False, seed=k)
        label(project, ds, user, {i: ("off" if truth[i] == 0 else "on") for i in range(30)})
        dsets.append(ds), raws.append(raw), truths.append(truth)
    fit = scoring.fit_default_calibration(project)
    assert fit is not None and fit.held_out_by == "groups"
    r = evaluation.accuracy(project, None)
    assert r["version"] == "default"
    rows = {d["dataset"]: d for d in r["datasets"]}
    assert rows["D0"]["held_out"]["n"] == 30 and rows["D0"]["since_training"]["n"] == 0
    # D1's held-out probabilities come from a calibration fitted on D0's labels only.
    cal = fit_calibration(raws[0], truths[0] == 0)
    expect = apply_calibration(raws[1], cal)
    t = best_f1_threshold(apply_calibration(raws[0], cal), truths[0] == 0)
    held = HeldOutScore.objects.filter(model_version__isnull=True, image__dataset=dsets[1]).order_by(
        "image__index"
    )
    assert [h.probabilities[0] for h in held] == pytest.approx(expect, abs=1e-5)
    assert held[0].thresholds[0] == pytest.approx(t, abs=1e-5)
    # Training fit: the calibration fitted on every label, judged on those labels.
    assert r["all"]["training_fit"]["n"] == 60
    # A label given afterwards is "since training" for the default score too.
    extra = make_ready_dataset(project, n=4, name="later", thumbnails=False, seed=9)
    label(project, extra, user, {0: "off"})
    r = evaluation.accuracy(project, None)
    assert {d["dataset"]: d for d in r["datasets"]}["later"]["since_training"]["n"] == 1
    assert r["all"]["held_out"]["n"] == 60


def test_it_holds_every_label_out_of_an_unfitted_default_score(project, user):
    ds = make_ready_dataset(project, n=10, thumbnails=False)
    label(project, ds, user, {0: "off"})
    r = evaluation.accuracy(project, None)
    assert r["held_out_by"] == "unfitted" and r["all"]["held_out"]["n"] == 1
    assert r["all"]["training_fit"]["n"] == 0


def test_it_handles_multiclass_projects(user):
    project = ProjectFactory(owner=user, task="multiclass", classes="a,b,c")
    rng = np.random.default_rng(3)
    p = rng.dirichlet([1, 1, 1], size=15)
    ds = make_ready_dataset(project, n=15, probs=p, thumbnails=False)
    truth = {i: "abc"[i % 3] for i in range(15)}
    label(project, ds, user, truth)
    backdate(list(ds.images.all()), timezone.now() - dt.timedelta(hours=1))
    v = ModelVersion.objects.create(
        project=project,
        number=1,
        arch="compact",
        task="multiclass",
        classes=project.classes,
        labels_at=timezone.now(),
        held_out_by="images",
    )
    HeldOutScore.objects.bulk_create(
        [
            HeldOutScore(
                image=im,
                model_version=v,
                label=im.consensus,
                probabilities=list(p[im.index]),
                thresholds=[0.5] * 3,
            )
            for im in ds.images.all()
        ]
    )
    r = evaluation.accuracy(project, v)
    s = r["all"]["held_out"]
    y = [i % 3 for i in range(15)]
    pred = p.argmax(axis=1)
    assert s["n"] == 15
    assert s["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), abs=1e-5)
    assert s["f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"), abs=1e-5)
    assert s["auc"] == pytest.approx(skm.roc_auc_score(y, p, multi_class="ovr"), abs=1e-5)
    assert s["per_class"]["b"]["f1"] == pytest.approx(skm.f1_score(y, pred, average=None)[1], abs=1e-5)
    assert len(r["curves"]) == 3 and np.array(r["confusion"]).shape == (3, 3)
    assert r["held_out_by"] == "images"


def test_it_compares_two_versions_on_the_same_images(project, user):
    ds = make_ready_dataset(project, n=40, thumbnails=False)
    truth = {i: ("off" if i % 2 else "on") for i in range(40)}
    label(project, ds, user, truth)
    when = timezone.now()
    ims = list(ds.images.all())
    good = trained_version(
        project, 1, {im: (im.consensus, 0.8 if im.consensus == "off" else 0.2) for im in ims}, when
    )
    coin = trained_version(
        project, 2, {im: (im.consensus, 0.8 if im.index % 4 < 2 else 0.2) for im in ims}, when
    )
    c = evaluation.compare(project, good, coin)
    assert c["n"] == 40 and c["f1_diff"] > 0.3 and c["f1_diff_ci"][0] > 0
    same = evaluation.compare(project, good, good)
    assert same["f1_diff"] == 0 and same["f1_diff_ci"] == [0, 0]


def test_it_measures_a_version_trained_before_held_out_scores_as_training_fit_only(project, user):
    ds = make_ready_dataset(project, n=10, thumbnails=False)
    label(project, ds, user, {0: "off", 1: "on"})
    v = ModelVersion.objects.create(
        project=project, number=1, arch="compact", task="binary", classes=project.classes
    )
    set_probabilities(project, ds, np.linspace(0, 1, 10), version=v)
    r = evaluation.accuracy(project, v)
    assert r["all"]["held_out"]["n"] == 0 and r["all"]["training_fit"]["n"] == 2 and r["held_out_by"] == ""


def test_it_serves_the_same_object_over_the_api_and_the_command_line(client, project, user, trained, capsys):
    client.force_login(user)
    r = client.get(f"/api/projects/{project.slug}/review/")
    assert r.status_code == 200
    body = r.json()
    call_command("review_accuracy", "--project", project.slug, "--json")
    assert json.loads(capsys.readouterr().out) == body
    assert body["version"] == "1" and body["classes"] == ["off", "on"]
    assert set(body) == {"version", "classes", "all", "datasets"}
    assert set(body["all"]) == {"held_out", "since_training", "training_fit"}
    for d in body["datasets"]:
        assert set(d) == {"dataset_id", "dataset", "held_out", "since_training", "training_fit"}
        for key in ("held_out", "since_training", "training_fit"):
            assert set(d[key]) == S_KEYS
    default = client.get(f"/api/projects/{project.slug}/review/?version=default").json()
    call_command("review_accuracy", "--project", project.slug, "--version", "default", "--json")
    assert json.loads(capsys.readouterr().out) == default and default["version"] == "default"
    call_command("review_accuracy", "--project", project.slug)
    assert "held out" in capsys.readouterr().out
    assert (
        client.get(f"/api/projects/{project.slug}/review/?dataset={trained['b'].pk}").json()["datasets"][0][
            "dataset"
        ]
        == "B"
    )
    assert client.get(f"/api/projects/{project.slug}/review/?version=7").status_code == 404
    assert client.get(f"/api/projects/{project.slug}/review/?version=x").status_code == 400
    schema = client.get("/api/schema/?format=json").json()
    assert {"n", "f1_ci", "auc"} <= set(schema["components"]["schemas"]["Measure"]["properties"])
    client.force_login(UserFactory())
    assert client.get(f"/api/projects/{project.slug}/review/").status_code == 404


def test_it_computes_cohens_kappa_between_annotators(project, user):
    ds = make_ready_dataset(project, n=10, thumbnails=False)
    other, third = UserFactory(), UserFactory()
    add_member(project, other, "annotator")
    add_member(project, third, "annotator")
    mine = ["off", "off", "on", "on", "off", "on", "off", "on"]
    theirs = ["off", "on", "on", "on", "off", "off", "off", "on"]
    label(project, ds, user, dict(enumerate(mine)))
    label(project, ds, other, dict(enumerate(theirs)))
    label(project, ds, third, {8: "on"})
    result = evaluation.annotators(project)
    rows = {r["user"]: r for r in result["annotators"]}
    pair = rows[user.username]["pairs"][other.username]
    assert pair["common"] == 8
    assert pair["kappa"] == pytest.approx(skm.cohen_kappa_score(mine, theirs), abs=1e-4)
    assert pair["agreement"] == pytest.approx(6 / 8)
    assert rows[user.username]["pairs"][third.username] == {"common": 0, "kappa": None, "agreement": None}
    assert rows[other.username]["labels"] == 8
    assert client_free_annotators(project)


def client_free_annotators(project) -> bool:
    return evaluation.annotators(project)["names"] != []


def test_it_uses_per_class_thresholds_for_multilabel_projects(client, user):
    project = ProjectFactory(owner=user, task="multilabel", classes="a,b,c")
    rng = np.random.default_rng(4)
    ds = make_ready_dataset(project, n=20, probs=rng.random((20, 3)), thumbnails=False)
    truth = {i: " ".join(c for j, c in enumerate("abc") if (i >> j) & 1) or "a" for i in range(20)}
    label(project, ds, user, truth)
    backdate(list(ds.images.all()), timezone.now() - dt.timedelta(hours=1))
    v = ModelVersion.objects.create(
        project=project,
        number=1,
        arch="compact",
        task="multilabel",
        classes=project.classes,
        labels_at=timezone.now(),
        held_out_by="images",
    )
    p = rng.random((20, 3))
    thresholds = [0.2, 0.5, 0.8]
    HeldOutScore.objects.bulk_create(
        [
            HeldOutScore(
                image=im,
                model_version=v,
                label=im.consensus,
                probabilities=list(p[im.index]),
                thresholds=thresholds,
            )
            for im in ds.images.all()
        ]
    )
    s = evaluation.accuracy(project, v)["all"]["held_out"]
    y = np.array([[c in truth[i].split() for c in "abc"] for i in range(20)], dtype=int)
    pred = (p >= np.array(thresholds)).astype(int)
    assert s["f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"), abs=1e-5)
    assert s["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), abs=1e-5)
    assert s["auc"] == pytest.approx(skm.roc_auc_score(y, p, average="macro"), abs=1e-5)
    client.force_login(user)
    html = client.get(f"/p/{project.slug}/review/?a=1").content.decode()
    assert 'id="per-class"' in html and "its own threshold" in html


def test_it_keeps_macro_intervals_open_when_no_error_is_seen():
    from ionsieve_core.ml.metrics import measure

    lows = []
    for reps in (1, 4, 16):
        y = np.tile([0, 1, 2, 0, 1, 2], reps)
        p = np.eye(3)[y] * 0.8 + 0.1
        m = measure(y, p, p.argmax(axis=1), "multiclass", ["a", "b", "c"])
        assert m["f1"] == 1.0 and m["f1_ci"][1] == 1.0
        lows.append(m["f1_ci"][0])
    assert lows[0] < 0.9 and lows[0] < lows[1] < lows[2] < 1.0


@pytest.mark.parametrize("task", ["binary", "multilabel"])
def test_it_cross_fits_calibration_and_thresholds_without_the_held_out_fold(task):
    from ionsieve_core.ml.calibration import cross_fitted
    from ionsieve_core.ml.cv import grouped_folds

    rng = np.random.default_rng(2)
    groups = np.repeat(["d1", "d2", "d3"], 20)
    if task == "binary":
        y = rng.integers(0, 2, 60)
        raw = np.c_[np.clip(0.6 - 0.3 * y + rng.normal(0, 0.2, 60), 0, 1), np.zeros(60)]
        raw[:, 1] = 1 - raw[:, 0]
    else:
        y = rng.integers(0, 2, (60, 3))
        raw = np.clip(0.3 + 0.4 * y + rng.normal(0, 0.2, (60, 3)), 0, 1)
    folds = grouped_folds(groups, 3)
    probs, thresholds, fold_of = cross_fitted(task, raw, y, folds)
    held = folds[0][1]
    assert set(groups[held]) == {groups[held][0]} and (fold_of[held] == 0).all()
    # Inverting the held-out fold's own labels changes nothing in its held-out predictions.
    flipped = y.copy()
    flipped[held] = 1 - flipped[held]
    probs2, thresholds2, _ = cross_fitted(task, raw, flipped, folds)
    assert np.allclose(probs2[held], probs[held]) and np.allclose(thresholds2[held], thresholds[held])
    others = np.setdiff1d(np.arange(60), held)
    assert not np.allclose(thresholds2[others], thresholds[others]) or not np.allclose(
        probs2[others], probs[others]
    )
