"""Two people labelling the same images at the same time, through a live gunicorn.

1,000 label writes each, same images, different processes (gunicorn workers): every answer is
200, one Label row per user per image, each user's last write wins, nothing is lost, and the
consensus kept on the image agrees with the labels. Once on SQLite (the embedded default: WAL,
busy timeout, IMMEDIATE transactions) in the embedded pass, and once on PostgreSQL in the server pass.
"""

from __future__ import annotations

import random
import sqlite3
import threading
from collections import Counter
from pathlib import Path

import pytest
import requests

from tests.integration.conftest import EMBEDDED, SERVER, needs_backend
from tests.reliability.livesite import Gunicorn, migrate, seed, seed_subprocess, site_env
from webapp.datasets.labels import consensus_of

pytestmark = pytest.mark.integration

WRITES_PER_USER = 1000
IMAGES = 40


def label_concurrently(base_url: str, tokens: list[str], image_ids: list[int], classes: list[str]):
    """Each user writes WRITES_PER_USER labels (sequentially, like a person at a keyboard), all
    users at once. Returns every user's last value per image and every failure."""
    last: list[dict[int, str]] = [{} for _ in tokens]
    failures: list[str] = []
    barrier = threading.Barrier(len(tokens))

    def run(u: int) -> None:
        rng = random.Random(u)
        session = requests.Session()
        session.headers["Authorization"] = f"Token {tokens[u]}"
        barrier.wait()
        for n in range(WRITES_PER_USER):
            image = image_ids[(n + u * 7) % len(image_ids)] if n < len(image_ids) else rng.choice(image_ids)
            value = rng.choice(classes)
            try:
                r = session.put(f"{base_url}/api/images/{image}/label/", json={"label": value}, timeout=60)
            except requests.RequestException as exc:
                failures.append(f"user {u} write {n}: {exc}")
                continue
            if r.status_code != 200:
                failures.append(f"user {u} write {n}: {r.status_code} {r.text[:200]}")
                continue
            if r.json().get("my_label") != value:
                failures.append(
                    f"user {u} write {n}: answered my_label={r.json().get('my_label')!r}, sent {value!r}"
                )
            last[u][image] = value

    threads = [threading.Thread(target=run, args=(u,)) for u in range(len(tokens))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return last, failures


def check(
    rows: list[tuple[int, int, str]],
    images: list[tuple[int, str | None, int, bool]],
    users: list[int],
    last: list[dict[int, str]],
    image_ids: list[int],
) -> None:
    """rows: (image_id, user_id, value) of every Label; images: (id, consensus, label_count, disagree)."""
    pairs = Counter((i, u) for i, u, _ in rows)
    assert all(c == 1 for c in pairs.values()), "duplicate labels"
    got = {(i, u): v for i, u, v in rows}
    expected = {(i, users[k]): v for k, values in enumerate(last) for i, v in values.items()}
    assert set(got) == set(expected), "labels lost or invented"
    wrong = {key: (got[key], v) for key, v in expected.items() if got[key] != v}
    assert not wrong, f"{len(wrong)} labels are not the user's last write: {list(wrong.items())[:5]}"
    assert set(i for i, _ in expected) == set(image_ids)
    for image_id, consensus, label_count, disagree in images:
        values = [v for (i, _), v in got.items() if i == image_id]
        assert label_count == len(values), f"image {image_id}: label_count {label_count} != {len(values)}"
        assert (consensus, bool(disagree)) == consensus_of(values), f"image {image_id}: stale consensus"


def test_it_keeps_every_last_label_of_two_concurrent_users_on_sqlite(tmp_path):
    needs_backend(EMBEDDED)  # its own SQLite file and gunicorn: once is enough
    db = tmp_path / "site.sqlite3"
    env = site_env(f"sqlite:///{db}", tmp_path / "media", DB_CONN_MAX_AGE="60")
    migrate(env)
    site = seed_subprocess(env, images=IMAGES, annotators=2)
    with Gunicorn(env, workers=2, threads=2, log_path=tmp_path / "gunicorn.log") as server:
        last, failures = label_concurrently(server.url, site["tokens"], site["images"], site["classes"])
        assert not failures, failures[:5]
    con = sqlite3.connect(db)
    try:
        rows = con.execute("select image_id, user_id, value from datasets_label").fetchall()
        images = con.execute(
            "select id, consensus, label_count, users_disagree from datasets_ionimage"
        ).fetchall()
        assert con.execute("pragma journal_mode").fetchone()[0] == "wal"
    finally:
        con.close()
    check(rows, images, site["users"], last, site["images"])


def test_it_keeps_every_last_label_of_two_concurrent_users_on_postgresql(
    transactional_db, settings, tmp_path
):
    from django.db import connection

    from webapp.datasets.models import IonImage, Label

    needs_backend(SERVER)
    site = seed(images=IMAGES, annotators=2, prefix="pg")
    db = connection.settings_dict
    url = (
        f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    )
    env = site_env(
        url, Path(settings.MEDIA_ROOT), broker_url=settings.CELERY_BROKER_URL, DB_CONN_MAX_AGE="60"
    )
    with Gunicorn(env, workers=2, threads=2, log_path=tmp_path / "gunicorn.log") as server:
        last, failures = label_concurrently(server.url, site["tokens"], site["images"], site["classes"])
        assert not failures, failures[:5]
    rows = list(Label.objects.values_list("image_id", "user_id", "value"))
    images = list(
        IonImage.objects.filter(pk__in=site["images"]).values_list(
            "id", "consensus", "label_count", "users_disagree"
        )
    )
    check(rows, images, site["users"], last, site["images"])
