from __future__ import annotations

import datetime as dt
import json
import re

import numpy as np
import pytest
from django.utils import timezone
from sklearn import metrics as skm

from classifier.models import HeldOutScore, ModelVersion
from tests.gallery_data import make_ready_dataset, set_probabilities
from webapp.datasets.labels import set_labels
from webapp.datasets.models import Label

pytestmark = pytest.mark.django_db


def figure(html: str, name: str) -> dict:
    return json.loads(
        re.search(rf'<script id="{name}" type="application/json">(.*?)</script>', html, re.S).group(1)
    )


def table(html: str, table_id: str) -> str:
    return re.search(rf'<table class="table metrics" id="{table_id}">(.*?)</table>', html, re.S).group(1)


def cells(html: str, dataset_id, table_id: str = "per-dataset", measure: str = "held_out") -> list[str]:
    """The text of the cells of one measure's row of one dataset: measure name, labels, F1..."""
    body = re.search(
        rf'<tbody data-dataset="{dataset_id}"[^>]*>(.*?)</tbody>', table(html, table_id), re.S
    ).group(1)
    row = re.search(rf'<tr[^>]*data-measure="{measure}">(.*?)</tr>', body, re.S).group(1)
    return [
        re.sub(r"\s+", " ", re.sub(r"<.*?>", "", c)).strip()
        for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
    ]


def version(project, number, images, probs, when, active=False, metrics=None):
    v = ModelVersion.objects.create(
        project=project,
        number=number,
        arch="compact",
        task="binary",
        classes=project.classes,
        is_active=active,
        labels_at=when,
        held_out_by="groups",
        metrics=metrics or {},
    )
    HeldOutScore.objects.bulk_create(
        [
            HeldOutScore(
                image=im, model_version=v, label=im.consensus, probabilities=[p, 1 - p], thresholds=[0.5, 0.5]
            )
            for im, p in zip(images, probs, strict=True)
        ]
    )
    return v


CV = {
    "overall": {
        "per_class": {
            "off": {"precision": 0.8, "recall": 0.7, "f1": 0.7467, "roc_auc": 0.9, "support": 12},
            "on": {"precision": 0.7, "recall": 0.8, "f1": 0.7467, "roc_auc": 0.9, "support": 12},
        },
        "accuracy": 0.75,
        "f1_macro": 0.7467,
        "roc_auc": 0.9,
        "n": 24,
    },
    "per_group": {},
    "per_fold": [{"accuracy": 0.7, "f1_macro": 0.7, "roc_auc": 0.8, "n": 12}],
    "folds": 1,
    "thresholds": [0.5, 0.5],
}


def test_it_shows_three_measures_with_intervals_and_held_out_figures(client, project, user, people):
    rng = np.random.default_rng(5)
    ds = make_ready_dataset(project, n=30, thumbnails=False)
    CV["per_group"] = {f"d{ds.pk}": CV["overall"]}
    truth = {i: ("off" if rng.random() < 0.5 else "on") for i in range(24)}
    for i, v in truth.items():
        set_labels(project, [ds.images.get(index=i)], user, v)
    Label.objects.update(updated_at=timezone.now() - dt.timedelta(hours=1))
    images = list(ds.images.filter(index__lt=24).order_by("index"))
    p1, p2 = rng.random(24), rng.random(24)
    when = timezone.now()
    v1 = version(project, 1, images, p1, when, metrics=CV)
    v2 = version(project, 2, images, p2, when, active=True)
    set_probabilities(project, ds, rng.random(30), version=v1)
    set_probabilities(project, ds, rng.random(30), version=v2)
    set_labels(project, [ds.images.get(index=25)], user, "off")  # after training
    client.force_login(people["viewer"])
    html = client.get(f"/p/{project.slug}/review/").content.decode()
    y = np.array([truth[i] == "off" for i in range(24)], dtype=int)
    for table_id, p in (("per-dataset", p2), ("per-dataset-b", p1)):  # active (v2) first, then v1
        row = cells(html, ds.pk, table_id)
        pred = (p >= 0.5).astype(int)
        n, f1, prec, rec, acc, auc = row[1:7]
        assert int(n) == 24
        assert float(f1.split()[0]) == pytest.approx(skm.f1_score(y, pred), abs=6e-3)
        assert re.fullmatch(r"\d\.\d\d \(\d\.\d\d–\d\.\d\d\)", f1)  # "0.92 (0.62–1.00)"
        assert float(prec.split()[0]) == pytest.approx(skm.precision_score(y, pred), abs=6e-3)
        assert float(rec.split()[0]) == pytest.approx(skm.recall_score(y, pred), abs=6e-3)
        assert float(acc.split()[0]) == pytest.approx(skm.accuracy_score(y, pred), abs=6e-3)
        assert float(auc.split()[0]) == pytest.approx(skm.roc_auc_score(y, p), abs=6e-3)
        assert row[0] == "Held out"
        assert cells(html, ds.pk, table_id, "since_training")[1] == "1"
        assert cells(html, ds.pk, table_id, "training_fit")[:2] == ["Training fit (optimistic)", "24"]
    assert 'class="n optimistic"' in html and cells(html, "all")[1] == "24"
    roc = figure(html, "fig-roc-data")
    fpr, tpr, _ = skm.roc_curve(y, p2)
    assert roc["data"][1]["x"] == pytest.approx(fpr, abs=1e-4) and roc["data"][1]["y"] == pytest.approx(
        tpr, abs=1e-4
    )
    assert "v2 (compact)" in roc["data"][1]["name"] and "held out" in roc["layout"]["title"]["text"]
    cm = figure(html, "fig-confusion0-data")["data"][0]["z"]
    assert cm == skm.confusion_matrix(1 - y, np.where(p2 >= 0.5, 0, 1), labels=[0, 1]).tolist()
    assert 'id="paired"' in html and "on the same images" in html
    # The cross-validation report is tables, per class and per dataset, not a key/value list.
    assert "Cross-validation report of v1" in html and 'class="table metrics cv-classes"' in html
    assert ds.name in re.search(r'cv-datasets">(.*?)</table>', html, re.S).group(1)
    assert "metrics-dict" not in html
    # The default score can be picked for comparison.
    html = client.get(f"/p/{project.slug}/review/?a=2&b=default").content.decode()
    assert (
        "default score" in html and cells(html, ds.pk, "per-dataset-b")[1] == "25"
    )  # unfitted: all held out


def test_it_says_when_held_out_figures_come_from_one_dataset(client, project, user):
    ds = make_ready_dataset(project, n=10, thumbnails=False)
    for i in range(6):
        set_labels(project, [ds.images.get(index=i)], user, "off" if i % 2 else "on")
    v = version(project, 1, list(ds.images.filter(index__lt=6)), [0.1, 0.9] * 3, timezone.now(), active=True)
    v.held_out_by = "images"
    v.save()
    client.force_login(user)
    html = client.get(f"/p/{project.slug}/review/").content.decode()
    assert "All labels came from one dataset" in html
    assert "Too few labels to tell" in html  # 6 labels: the interval reaches below 0.90


def test_it_shows_version_headline_metrics_on_the_project_page(client, project, user):
    ModelVersion.objects.create(
        project=project,
        number=1,
        arch="compact",
        task="binary",
        classes=project.classes,
        is_active=True,
        metrics={"overall": {"f1": 0.8123, "roc_auc": 0.9}},
        label_total=42,
    )
    client.force_login(user)
    html = client.get(f"/p/{project.slug}/").content.decode()
    assert "0.812" in html and "42" in html and "active" in html
    assert "Scores come from the unsupervised default" not in html
