"""The default score of an image collection: each picture scored at its own size, with no shared
sample area looked for across unrelated pictures (real METASPACE images)."""

from __future__ import annotations

import numpy as np
import pytest
from django.core.management import call_command
from sklearn.metrics import roc_auc_score

from classifier import scoring
from tests.shared_data import SHARED_DATA
from webapp.datasets.models import Dataset

pytestmark = pytest.mark.django_db

GS = SHARED_DATA / "ionimages" / "metaspace_examples"


def test_it_scores_each_real_picture_on_its_own_when_they_share_no_acquisition(project, capsys):
    call_command("import_images", str(GS), "--project", project.slug)
    ds = Dataset.objects.get(pk=int(capsys.readouterr().out.split()[-1]))
    images = list(ds.images.order_by("index"))
    assert len({(im.height, im.width) for im in images}) > 1  # padded to the largest in the stack
    assert not scoring.shares_acquisition(ds, images)
    raw = scoring.default_raw_scores(ds, images)
    truth = [im.consensus == "off" for im in images]
    # 8 real ion images from METASPACE (development images of the shipped model: an
    # illustration that the padding no longer spoils the score, not an accuracy figure).
    assert roc_auc_score(truth, raw[:, 0]) == 1.0
    # The padded stack (the old behaviour) mixes the pictures into one sample area and fails.
    from ionsieve_core.ml.default_score import default_binary_scores
    from webapp.datasets import arrays

    padded = default_binary_scores(np.asarray(arrays.load_stack(ds), dtype=np.float32), None)
    assert roc_auc_score(truth, padded[:, 0]) < 0.9


def test_it_keeps_the_shared_context_for_an_msi_dataset_and_same_size_pictures(project):
    ds = Dataset(project=project, kind=Dataset.Kind.IMZML, height=5, width=6)
    from webapp.datasets.models import IonImage

    odd = [IonImage(height=5, width=6), IonImage(height=4, width=6)]
    assert scoring.shares_acquisition(ds, odd)
    ds.kind = Dataset.Kind.IMAGES
    assert not scoring.shares_acquisition(ds, odd)
    assert scoring.shares_acquisition(ds, [IonImage(height=5, width=6), IonImage(height=0, width=0)])
