from __future__ import annotations

import json
import re

import numpy as np
import pytest
from sklearn import metrics as skm

from classifier.models import ModelVersion
from tests.gallery_data import make_ready_dataset, set_probabilities
from webapp.datasets.labels import set_labels

pytestmark = pytest.mark.django_db


def figure(html: str, name: str) -> dict:
    return json.loads(re.search(rf'<script id="{name}" type="application/json">(.*?)</script>', html, re.S).group(1))


def cells(html: str, dataset_id) -> list[str]:
    row = re.search(rf'<tr\s+data-dataset="{dataset_id}">(.*?)</tr>', html, re.S).group(1)
    return [re.sub(r"<.*?>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]


def test_it_compares_active_and_previous_versions_like_sklearn(client, project, user, people):
    rng = np.random.default_rng(5)
    ds = make_ready_dataset(project, n=30, thumbnails=False)
    truth = {i: ("off" if rng.random() < 0.5 else "on") for i in range(24)}
    for i, v in truth.items():
        set_labels(project, [ds.images.get(index=i)], user, v)
    v1 = ModelVersion.objects.create(project=project, number=1, arch="compact", task="binary", classes=project.classes,
                                     metrics={"overall": {"f1": 0.71, "roc_auc": 0.8}, "folds": [{"f1": 0.7}]})
    v2 = ModelVersion.objects.create(project=project, number=2, arch="resnet50", task="binary", classes=project.classes,
                                     is_active=True, metrics={"overall": {"f1": 0.9}})
    p1, p2 = rng.random(30), rng.random(30)
    set_probabilities(project, ds, p1, version=v1)
    set_probabilities(project, ds, p2, version=v2)
    client.force_login(people["viewer"])
    html = client.get(f"/p/{project.slug}/review/").content.decode()
    row = cells(html, ds.pk)
    y = np.array([truth[i] == "off" for i in range(24)], dtype=int)
    for offset, p in [(1, p2[:24]), (8, p1[:24])]:  # active (v2) first, then previous (v1)
        pred = (p >= 0.5).astype(int)
        n, dis, prec, rec, f1, acc, auc = row[offset:offset + 7]
        assert int(n) == 24 and int(dis) == int((pred != y).sum())
        assert float(prec) == pytest.approx(skm.precision_score(y, pred), abs=6e-4)
        assert float(rec) == pytest.approx(skm.recall_score(y, pred), abs=6e-4)
        assert float(f1) == pytest.approx(skm.f1_score(y, pred), abs=6e-4)
        assert float(acc) == pytest.approx(skm.accuracy_score(y, pred), abs=6e-4)
        assert float(auc) == pytest.approx(skm.roc_auc_score(y, p), abs=6e-4)
    roc = figure(html, "fig-roc-data")
    fpr, tpr, _ = skm.roc_curve(y, p2[:24])
    assert roc["data"][1]["x"] == pytest.approx(fpr, abs=1e-4) and roc["data"][1]["y"] == pytest.approx(tpr, abs=1e-4)
    assert "v2 (resnet50)" in roc["data"][1]["name"] and "v1 (compact)" in roc["data"][2]["name"]
    cm = figure(html, "fig-confusion0-data")["data"][0]["z"]
    pred2 = np.where(p2[:24] >= 0.5, 0, 1)
    assert cm == skm.confusion_matrix(np.where(y == 1, 0, 1), pred2, labels=[0, 1]).tolist()
    assert "Cross-validation of v1" in html and "folds" in html
    # The default score can be picked for comparison.
    html = client.get(f"/p/{project.slug}/review/?a=2&b=default").content.decode()
    assert "default score" in html and cells(html, ds.pk)[8] == "24"


def test_it_shows_version_headline_metrics_on_the_project_page(client, project, user):
    ModelVersion.objects.create(project=project, number=1, arch="compact", task="binary", classes=project.classes,
                                is_active=True, metrics={"overall": {"f1": 0.8123, "roc_auc": 0.9}}, label_total=42)
    client.force_login(user)
    html = client.get(f"/p/{project.slug}/").content.decode()
    assert "0.812" in html and "42" in html and "active" in html
    assert "Scores come from the unsupervised default" not in html
