"""Labelling in a real browser: keys past 9, auto-advance, undo after a reload, select-all."""

from __future__ import annotations

import numpy as np
import pytest

from tests.browser.conftest import log_in, screenshot
from tests.factories import PASSWORD, ProjectFactory, UserFactory
from tests.gallery_data import make_ready_dataset
from webapp.datasets.models import Label

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

YEAST = "ER,bud,bud_neck,cell_periphery,cytosol,mitochondria,nuclear_periphery,nucleus,punctate,vacuole,vacuole_membrane"


def _saved(page) -> None:
    page.wait_for_function("!document.querySelector('.tile.saving')")


def test_it_labels_all_eleven_yeast_classes_by_keyboard_with_auto_advance(new_page):
    owner = UserFactory()
    project = ProjectFactory(owner=owner, name="Yeast", task="multiclass", classes=YEAST)
    ds = make_ready_dataset(project, n=12, probs=np.full((12, 11), 1 / 11))
    page = new_page()
    log_in(page, owner.username, PASSWORD)
    page.goto(f"/datasets/{ds.pk}/gallery/?ordering=index")
    page.wait_for_selector(".tile")
    keys = project.class_keys
    assert keys[9:] == ["0", "a"]  # classes 10 and 11
    assert "vacuole_membrane" in page.locator(".keys").inner_text()
    page.check("#auto-advance")
    page.locator(".tile").first.click(position={"x": 20, "y": 20})
    for k in keys:
        page.keyboard.press(k)  # labels the focused image, then the focus moves on
    page.wait_for_function("document.querySelectorAll('.tile.labelled').length === 11")
    _saved(page)
    images = list(ds.images.order_by("index")[:11])
    assert [Label.objects.get(image=im).value for im in images] == project.classes
    focused = page.get_attribute("#grid", "aria-activedescendant")
    assert focused == f"tile-{ds.images.get(index=11).pk}"
    assert page.get_attribute(f"#{focused}", "role") == "gridcell"
    screenshot(page, "gallery-yeast.png")
    assert not page.errors


def test_it_undoes_after_a_reload_and_labels_everything_matching_a_filter(new_page):
    owner = UserFactory()
    project = ProjectFactory(owner=owner, name="Kidney")
    ds = make_ready_dataset(project, n=40, probs=np.linspace(0.01, 0.99, 40))
    page = new_page()
    log_in(page, owner.username, PASSWORD)
    page.goto(f"/datasets/{ds.pk}/gallery/?ordering=index")
    page.wait_for_selector(".tile")
    page.locator(".tile").first.click(position={"x": 20, "y": 20})
    page.keyboard.press("1")
    page.wait_for_function("document.querySelectorAll('.tile.labelled').length === 1")
    _saved(page)

    page.reload()
    page.wait_for_function("document.querySelectorAll('.tile.labelled').length === 1")
    page.locator("#grid").focus()
    page.keyboard.press("u")  # the undo step was kept on the server
    page.wait_for_function("document.querySelectorAll('.tile.labelled').length === 0")
    assert not Label.objects.exists()

    # Select every image with P(off) >= 0.5 (more than are on screen at small sizes) and label them.
    page.eval_on_selector(
        "#prob-min", "el => { el.value = 50; el.dispatchEvent(new Event('change', {bubbles: true})); }"
    )
    page.wait_for_function("document.querySelector('[data-count=total]').textContent === '(20)'")
    page.click("#select-all")
    page.wait_for_function("window.IonSieveGallery.selected().length === 20")
    assert "20 selected" in page.locator("#selection-info").inner_text()
    page.locator("#grid").focus()
    page.keyboard.press("1")
    page.wait_for_function("document.querySelectorAll('.tile.labelled').length === 20")
    assert Label.objects.filter(value="off").count() == 20
    assert set(Label.objects.values_list("image__probability", flat=True)) == set(
        ds.images.filter(probability__gte=0.5).values_list("probability", flat=True)
    )
    page.keyboard.press("u")  # one bulk action, one undo
    page.wait_for_function("document.querySelectorAll('.tile.labelled').length === 0")
    assert not Label.objects.exists()
    assert not page.errors


def test_it_adds_one_class_in_bulk_keeping_the_others_in_multilabel(new_page):
    owner = UserFactory()
    project = ProjectFactory(owner=owner, name="Atlas", task="multilabel", classes="nucleus,cytosol,er")
    ds = make_ready_dataset(project, n=6, probs=np.full((6, 3), 0.5))
    from webapp.datasets.labels import set_labels

    ims = list(ds.images.order_by("index"))
    set_labels(project, ims[:3], owner, ["nucleus"])
    page = new_page()
    log_in(page, owner.username, PASSWORD)
    page.goto(f"/datasets/{ds.pk}/gallery/?ordering=index")
    page.wait_for_function("document.querySelectorAll('.tile.labelled').length === 3")
    page.click("#select-all")
    page.wait_for_function("window.IonSieveGallery.selected().length === 6")
    page.locator("#grid").focus()
    page.keyboard.press("2")  # cytosol added to all six
    page.wait_for_function("document.querySelectorAll('.tile.labelled').length === 6")
    _saved(page)
    values = dict(Label.objects.values_list("image_id", "value"))
    assert [values[im.pk] for im in ims] == ["nucleus cytosol"] * 3 + ["cytosol"] * 3
    assert not page.errors


def test_it_shows_each_images_label_history_on_its_page(new_page):
    owner = UserFactory()
    project = ProjectFactory(owner=owner, name="Liver")
    ds = make_ready_dataset(project, n=3)
    im = ds.images.order_by("index").first()
    page = new_page()
    log_in(page, owner.username, PASSWORD)
    page.goto(f"/images/{im.pk}/")
    page.wait_for_selector("#label-history li.empty")
    page.keyboard.press("1")  # off-sample; the page reloads after saving
    page.wait_for_function("document.querySelectorAll('#label-history li:not(.empty)').length === 1")
    text = page.locator("#label-history li").first.inner_text()
    assert owner.username in text and "none → off" in text and "page" in text
    page.goto(f"/p/{project.slug}/labels/")
    assert page.locator("#label-events tbody tr").count() == 1
    screenshot(page, "label-history.png")
    assert not page.errors
