"""The Python client against a live server: upload and wait, predictions, labels, history, restore."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from rest_framework.authtoken.models import Token

from ionsieve_client import ApiError, IonSieve
from tests.datasets.helpers import synthetic
from tests.factories import ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

CLIENT_SOURCE = Path(__file__).resolve().parents[2] / "ionsieve_client" / "client.py"


def _template(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


def test_it_only_calls_endpoints_that_the_schema_documents():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    documented = {(_template(p), m.upper()) for p, ops in schema["paths"].items() for m in ops}
    source = CLIENT_SOURCE.read_text()
    calls = re.findall(r'"(GET|POST|PUT|DELETE)",\s*f?"(/api/[^"]*)"', source)
    calls += [("POST", p) for p in re.findall(r'_multipart\(f?"(/api/[^"]*)"', source)]
    calls += [("GET", p) for p in re.findall(r'_pages\(f?"(/api/[^"]*)"', source)]
    assert len(calls) >= 14  # every method of the client
    missing = [f"{m} {p}" for m, p in calls if (_template(p), m) not in documented]
    assert not missing, f"the client calls undocumented endpoints: {missing}"


@pytest.fixture
def ion(live_server, settings, tmp_path):
    owner = UserFactory(username="paula")
    project = ProjectFactory(owner=owner, name="Colon", slug="colon")
    token = Token.objects.create(user=owner)
    return IonSieve(live_server.url, token.key), project


def test_it_uploads_waits_and_labels_through_the_client(ion, tmp_path):
    client, project = ion
    truth = synthetic(tmp_path, seed=5)
    imzml = Path(truth.imzml_path)
    ds = client.upload_imzml("colon", imzml, imzml.with_suffix(".ibd"), name="run 1", top=12)
    ds = client.wait_for_dataset(ds["id"], timeout=300, poll=0.2)
    assert ds["status"] == "ready" and ds["image_count"] == 12
    rows = client.predictions(ds["id"])
    assert len(rows) == 12 and all(r["probability"] is not None for r in rows)
    probs = [r["probability"] for r in rows]
    assert probs == sorted(probs, reverse=True)

    before = timezone.now().isoformat()
    client.set_label(rows[0]["id"], "off")
    assert client.label_many("colon", [r["id"] for r in rows[:5]], "on")["labelled"] == 5
    history = client.label_history(rows[0]["id"])
    assert [(h["previous"], h["label"], h["source"]) for h in history] == [
        ("off", "on", "api"),
        (None, "off", "api"),
    ]
    assert client.counts(ds["id"])["labelled"] == 5
    assert client.restore_labels("colon", before) == 5
    assert client.counts(ds["id"])["labelled"] == 0
    assert client.review("colon", "default")["version"] == "default"


def test_it_raises_a_clear_error_for_refused_requests(ion):
    client, _ = ion
    with pytest.raises(ApiError) as err:
        client.datasets("no-such-project")
    assert err.value.status == 404
    bad = IonSieve(client.base, "not-a-token")
    with pytest.raises(ApiError) as err:
        bad.projects()
    assert err.value.status in (401, 403) and "invalid token" in str(err.value).lower()


def test_it_runs_the_three_examples_end_to_end(ion, tmp_path, capsys):
    from ionsieve_client.examples import fetch_predictions, push_labels, upload_and_wait

    client, _ = ion
    truth = synthetic(tmp_path, seed=9)
    imzml = Path(truth.imzml_path)
    assert (
        upload_and_wait.main(
            [client.base, client.token, "colon", str(imzml), str(imzml.with_suffix(".ibd")), "--top", "8"]
        )
        == 0
    )
    dataset_id = int(capsys.readouterr().out.split()[-1])
    out = tmp_path / "pred.csv"
    assert fetch_predictions.main([client.base, client.token, str(dataset_id), str(out)]) == 0
    lines = out.read_text().splitlines()
    assert len(lines) == 9 and lines[0].startswith("id,name,mz,probability")
    names = [line.split(",")[1] for line in lines[1:3]]
    labels = tmp_path / "labels.csv"
    labels.write_text(f"name,label\n{names[0]},off\n{names[1]},on\n")
    assert push_labels.main([client.base, client.token, "colon", str(dataset_id), str(labels)]) == 0
    assert client.counts(dataset_id)["labelled"] == 2
    labels.write_text("name,label\nno-such-ion,off\n")
    assert push_labels.main([client.base, client.token, "colon", str(dataset_id), str(labels)]) == 1
