"""Label next in a real browser: the queue by strategy, focus moving on after each key, the
counter, and new scores picked up without a reload."""

from __future__ import annotations

import numpy as np
import pytest

from tests.browser.conftest import log_in, screenshot
from tests.factories import PASSWORD, ProjectFactory, UserFactory
from tests.gallery_data import make_ready_dataset
from webapp.datasets import labels
from webapp.datasets.models import Label

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_it_labels_the_queue_with_auto_advance_and_picks_up_new_scores(new_page):
    owner = UserFactory()
    project = ProjectFactory(owner=owner, name="Next")
    probs = np.linspace(0.05, 0.95, 20)
    ds = make_ready_dataset(project, n=20, probs=probs)
    images = list(ds.images.order_by("index"))
    labels.set_labels(project, [images[19]], owner, "off")  # the most likely off-sample one
    page = new_page()
    log_in(page, owner.username, PASSWORD)
    page.goto(f"/datasets/{ds.pk}/gallery/?mode=next&strategy=probability")
    page.wait_for_selector(".tile")
    assert page.is_visible("#next-panel") and not page.is_visible("#filters")
    assert "off" in page.locator("#next-strategy option:checked").inner_text().lower()
    assert page.is_checked("#auto-advance")  # on by default in this mode
    ids = page.evaluate("IonSieveGallery.items().map(x => x.id)")
    assert ids == [images[i].pk for i in range(18, -1, -1)]  # labelled image left out, highest first
    page.locator(".tile").first.click(position={"x": 20, "y": 20})
    page.keyboard.press("1")
    page.wait_for_function("!document.querySelector('.tile.saving')")
    assert page.get_attribute("#grid", "aria-activedescendant") == f"tile-{images[17].pk}"
    assert Label.objects.get(image=images[18]).value == "off"
    page.wait_for_function(
        "document.getElementById('live-counter').textContent.includes('1 label given here')"
    )

    # New scores arrive (as a live update writes them): the lowest image is now the most likely off.
    from classifier import active
    from classifier.models import ModelVersion

    v = ModelVersion.objects.create(
        project=project,
        number=1,
        arch="quick",
        task="binary",
        classes=project.classes,
        quick=True,
        label_total=2,
        metrics={"thresholds": [0.5, 0.5]},
    )
    v.activate()
    new = np.linspace(0.95, 0.05, 20)
    active.store_fast(project, images, np.stack([new, 1 - new], axis=1), np.array([0.5, 0.5]), v)
    page.evaluate("IonSieveGallery.poll()")
    page.wait_for_function(
        "document.getElementById('live-counter').textContent.includes('v1 (quick update)')"
    )
    page.keyboard.press("2")  # labels images[17]; the queue after it follows the new scores
    page.wait_for_function(
        f"IonSieveGallery.items()[2] && IonSieveGallery.items()[2].id === {images[0].pk}"
    )  # after 18, 17
    page.wait_for_function(
        f"document.getElementById('grid').getAttribute('aria-activedescendant') === 'tile-{images[0].pk}'"
    )
    assert Label.objects.get(image=images[17]).value == "on"
    screenshot(page, "label-next.png")
    assert not page.errors


def test_the_gallery_links_to_label_next_and_keeps_its_own_auto_advance(new_page):
    owner = UserFactory()
    project = ProjectFactory(owner=owner, name="Gallery")
    ds = make_ready_dataset(project, n=6)
    page = new_page()
    log_in(page, owner.username, PASSWORD)
    page.goto(f"/datasets/{ds.pk}/gallery/")
    page.wait_for_selector(".tile")
    assert not page.is_visible("#next-panel") and not page.is_checked("#auto-advance")
    page.click("#enter-next")
    page.wait_for_selector("#next-panel:not([hidden]) >> text=Label next")
    page.wait_for_selector(".tile")
    assert page.locator("#next-strategy").input_value() == "active"
    assert not page.errors
