from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from classifier import review
from classifier.models import ModelVersion
from tests.factories import ProjectFactory, UserFactory, add_member
from tests.gallery_data import make_ready_dataset, set_probabilities
from webapp.datasets.labels import set_labels

pytestmark = pytest.mark.django_db


def label(project, ds, user, values: dict[int, str]):
    for index, value in values.items():
        set_labels(project, [ds.images.get(index=index)], user, value)


@pytest.fixture
def setup(project, user):
    rng = np.random.default_rng(1)
    a = make_ready_dataset(project, n=20, name="A", probs=rng.random(20), thumbnails=False)
    b = make_ready_dataset(project, n=10, name="B", probs=rng.random(10), seed=2, thumbnails=False)
    la = {i: ("off" if i % 3 else "on") for i in range(12)}
    lb = {i: ("on" if i % 2 else "off") for i in range(8)}
    label(project, a, user, la)
    label(project, b, user, lb)
    return a, b, la, lb


def expected(ds, labels: dict[int, str], probs_of=None):
    ims = {im.index: im for im in ds.images.all()}
    y = np.array([1 if labels[i] == "off" else 0 for i in sorted(labels)])
    p = np.array([probs_of(ims[i]) if probs_of else ims[i].probability for i in sorted(labels)])
    pred = (p >= 0.5).astype(int)
    return y, p, pred


def test_it_matches_sklearn_per_dataset_for_the_default_score(project, setup):
    a, b, la, lb = setup
    result = review.review(project, None)
    assert result["version"]["key"] == "default"
    rows = {d["name"]: d for d in result["datasets"]}
    for ds, labels in [(a, la), (b, lb)]:
        y, p, pred = expected(ds, labels)
        row = rows[ds.name]
        assert row["n_labelled"] == len(labels)
        assert row["n_disagreements"] == int((y != pred).sum())
        assert row["precision"] == pytest.approx(skm.precision_score(y, pred, zero_division=0), abs=1e-4)
        assert row["recall"] == pytest.approx(skm.recall_score(y, pred, zero_division=0), abs=1e-4)
        assert row["f1"] == pytest.approx(skm.f1_score(y, pred, zero_division=0), abs=1e-4)
        assert row["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), abs=1e-4)
        assert row["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p), abs=1e-4)
    overall = result["overall"]
    assert overall["n_labelled"] == len(la) + len(lb)
    assert sum(map(sum, overall["confusion"])) == overall["n_labelled"]
    curve = overall["curves"][0]
    assert curve["class"] == "off" and curve["fpr"][0] == 0 and curve["tpr"][-1] == 1


def test_it_scores_each_version_from_its_own_predictions(project, user, setup):
    a, b, la, lb = setup
    v1 = ModelVersion.objects.create(project=project, number=1, arch="compact", task="binary", classes=project.classes)
    # v1 is perfect on A and never scored B.
    perfect = np.array([0.9 if la.get(i, "on") == "off" else 0.1 for i in range(20)])
    set_probabilities(project, a, perfect, version=v1)
    result = review.review(project, v1)
    assert [d["name"] for d in result["datasets"]] == ["A"]
    assert result["datasets"][0]["f1"] == 1.0 and result["datasets"][0]["n_disagreements"] == 0
    # The default score is still there and unchanged.
    assert review.review(project, None)["overall"]["n_labelled"] == len(la) + len(lb)
    assert review.resolve_version(project, "1") == v1 and review.resolve_version(project, "default") is None
    with pytest.raises(review.ReviewError):
        review.resolve_version(project, "latest")


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
    result = review.annotators(project)
    rows = {r["user"]: r for r in result["annotators"]}
    pair = rows[user.username]["pairs"][other.username]
    assert pair["common"] == 8
    assert pair["kappa"] == pytest.approx(skm.cohen_kappa_score(mine, theirs), abs=1e-4)
    assert pair["agreement"] == pytest.approx(6 / 8)
    assert rows[user.username]["pairs"][third.username] == {"common": 0, "kappa": None, "agreement": None}
    assert rows[other.username]["labels"] == 8
    preds = {im.index: im.predicted for im in ds.images.all()}
    agree = np.mean([mine[i] == preds[i] for i in range(8)])
    assert rows[user.username]["model_agreement"] == pytest.approx(agree, abs=1e-4)


def test_it_handles_multiclass_projects(user):
    project = ProjectFactory(owner=user, task="multiclass", classes="a,b,c")
    rng = np.random.default_rng(3)
    p = rng.dirichlet([1, 1, 1], size=15)
    ds = make_ready_dataset(project, n=15, probs=p, thumbnails=False)
    truth = {i: "abc"[i % 3] for i in range(15)}
    label(project, ds, user, truth)
    result = review.review(project, None)["overall"]
    y = [i % 3 for i in range(15)]
    pred = p.argmax(axis=1)
    assert result["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), abs=1e-4)
    assert result["f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"), abs=1e-4)
    assert result["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p, multi_class="ovr"), abs=1e-4)
    assert len(result["curves"]) == 3 and np.array(result["confusion"]).shape == (3, 3)


def test_it_serves_review_and_annotators_over_the_api(client, project, user, setup):
    client.force_login(user)
    r = client.get(f"/api/projects/{project.slug}/review/?version=default&dataset={setup[1].pk}")
    assert r.status_code == 200
    assert [d["name"] for d in r.json()["datasets"]] == ["B"]
    assert client.get(f"/api/projects/{project.slug}/review/?version=7").status_code == 404
    assert client.get(f"/api/projects/{project.slug}/review/?version=x").status_code == 400
    assert client.get(f"/api/projects/{project.slug}/annotators/").json()["names"] == [user.username]
    client.force_login(UserFactory())
    assert client.get(f"/api/projects/{project.slug}/review/").status_code == 404
