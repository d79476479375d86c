from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.datasets.helpers import synthetic, write_mz_list
from tests.factories import ProjectFactory, UserFactory, add_member
from webapp.datasets import labels
from webapp.datasets.models import Dataset, Label

pytestmark = pytest.mark.django_db


@pytest.fixture
def dataset(project, tmp_path, capsys):
    truth = synthetic(tmp_path, seed=11)
    mz_list = write_mz_list(tmp_path / "l.csv", [m for m, _ in truth.ions])
    call_command("import_imzml", truth.imzml_path, "--project", project.slug, "--mz-list", str(mz_list))
    ds = Dataset.objects.get(pk=int(capsys.readouterr().out.split()[-1]))
    ds.truth = truth
    return ds


def test_it_normalises_labels_for_each_task(user):
    binary = ProjectFactory(owner=user)
    multi = ProjectFactory(owner=user, task="multilabel", classes="nucleus,cytosol,er")
    assert labels.normalise(binary, "off") == "off"
    assert labels.normalise(multi, ["er", "nucleus"]) == "nucleus er"
    assert labels.normalise(multi, "cytosol,nucleus") == "nucleus cytosol"
    with pytest.raises(labels.LabelError, match="Unknown class 'bad'"):
        labels.normalise(binary, "bad")
    with pytest.raises(labels.LabelError, match="exactly one"):
        labels.normalise(binary, ["off", "on"])


def test_it_keeps_one_label_per_user_and_the_last_write(dataset, user):
    im = dataset.images.first()
    labels.set_labels(dataset.project, [im], user, "off")
    labels.set_labels(dataset.project, [im], user, "on")
    assert Label.objects.filter(image=im).count() == 1
    im.refresh_from_db()
    assert im.consensus == "on" and im.label_count == 1 and not im.users_disagree


def test_it_computes_the_consensus_and_disagreement(dataset, user):
    bob, carol = UserFactory(), UserFactory()
    add_member(dataset.project, bob, "annotator")
    add_member(dataset.project, carol, "annotator")
    im = dataset.images.first()
    labels.set_labels(dataset.project, [im], user, "off")
    labels.set_labels(dataset.project, [im], bob, "on")
    im.refresh_from_db()
    assert im.consensus is None and im.users_disagree  # a tie has no consensus
    labels.set_labels(dataset.project, [im], carol, "on")
    im.refresh_from_db()
    assert im.consensus == "on" and im.users_disagree and im.label_count == 3
    labels.set_labels(dataset.project, [im], carol, None, unsure=True)
    im.refresh_from_db()
    assert im.consensus is None and im.label_count == 3
    labels.remove_labels(dataset.project, [im], bob)
    im.refresh_from_db()
    assert im.consensus == "off" and not im.users_disagree


def test_it_imports_labels_by_mz_or_name(dataset, user, tmp_path, capsys):
    ions = dataset.truth.ions
    rows = ["mz,label"] + [f"{mz!r},{lab}" for mz, lab in ions[:4]]
    (tmp_path / "labels.csv").write_text("\n".join(rows))
    call_command("import_labels", dataset.pk, str(tmp_path / "labels.csv"))
    got = dict(dataset.images.filter(index__lt=4).values_list("index", "consensus"))
    assert got == {i: lab for i, (_, lab) in enumerate(ions[:4])}
    (tmp_path / "byname.csv").write_text("name,label\nion5,off\n")
    call_command("import_labels", dataset.pk, str(tmp_path / "byname.csv"), "--user", user.username)
    assert dataset.images.get(index=5).consensus == "off"


def test_it_imports_nothing_when_a_row_is_wrong(dataset, tmp_path):
    mz0 = dataset.truth.ions[0][0]
    (tmp_path / "bad.csv").write_text(f"mz,label\n{mz0!r},off\n1.5,on\n{mz0!r},maybe\n")
    with pytest.raises(CommandError) as exc:
        call_command("import_labels", dataset.pk, str(tmp_path / "bad.csv"))
    assert "no image matches 1.5" in str(exc.value) and "Unknown class 'maybe'" in str(exc.value)
    assert not Label.objects.exists()


def test_it_refuses_viewer_label_imports(dataset, tmp_path):
    viewer = UserFactory()
    add_member(dataset.project, viewer, "viewer")
    (tmp_path / "l.csv").write_text("name,label\nion1,off\n")
    with pytest.raises(CommandError, match="viewer"):
        call_command("import_labels", dataset.pk, str(tmp_path / "l.csv"), "--user", viewer.username)
