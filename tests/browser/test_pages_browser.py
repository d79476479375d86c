from __future__ import annotations

import numpy as np
import pytest
from django.utils import timezone

from classifier.models import HeldOutScore, ModelVersion
from tests.browser.conftest import log_in, screenshot
from tests.factories import PASSWORD, ProjectFactory, UserFactory
from tests.gallery_data import make_ready_dataset, set_probabilities
from webapp.datasets.gallery import disagreement_q
from webapp.datasets.labels import set_labels
from webapp.datasets.models import Label
from webapp.projects.models import Project

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_it_signs_up_creates_a_project_and_shows_it_read_only_to_a_viewer(new_page):
    viewer = UserFactory(username="vera")
    page = new_page()
    page.goto("/accounts/signup/")
    page.fill("input[name=username]", "olga")
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url(lambda u: "/signup/" not in u)
    page.goto("/projects/new/")
    page.fill("input[name=name]", "Mouse brain")
    page.select_option("select[name=task]", "binary")
    page.click("form button[type=submit]")
    page.wait_for_selector("#upload-card")
    assert page.locator("#cold-start").is_visible()
    screenshot(page, "project.png")
    project = Project.objects.get(name="Mouse brain")
    page.click("text=Members")
    page.fill("#invite-form input[name=user]", "vera")
    page.select_option("#invite-form select[name=role]", "viewer")
    page.click("#invite-form button[type=submit]")
    page.wait_for_selector("tr[data-username=vera]")
    ds = make_ready_dataset(project, n=8, thumbnails=True)

    other = new_page()
    log_in(other, viewer.username, PASSWORD)
    other.goto(f"/p/{project.slug}/")
    assert other.locator("#my-role").inner_text() == "viewer"
    assert other.locator("#upload-card").count() == 0 and other.locator("#train-card").count() == 0
    assert other.locator("button.activate").count() == 0
    other.goto(f"/datasets/{ds.pk}/gallery/")
    other.wait_for_selector(".tile")
    assert other.locator("#read-only").is_visible()
    assert other.locator(".tile button.cls").count() == 0
    other.keyboard.press("1")  # does nothing for a viewer
    other.wait_for_timeout(300)
    assert not Label.objects.exists()
    assert not other.errors and not page.errors


def test_it_sorts_labels_with_the_keyboard_and_filters_disagreements(new_page):
    owner = UserFactory()
    project = ProjectFactory(owner=owner, name="Kidney")
    probs = np.linspace(0.01, 0.99, 60)[np.random.default_rng(0).permutation(60)]
    ds = make_ready_dataset(project, n=60, probs=probs)
    page = new_page()
    log_in(page, owner.username, PASSWORD)
    page.goto(f"/datasets/{ds.pk}/gallery/")
    page.wait_for_selector(".tile")
    page.select_option("#ordering", "probability")
    page.wait_for_function(
        "document.querySelectorAll('.tile').length === 60 && +document.querySelector('.tile').dataset.prob < 0.02"
    )
    shown = [float(x) for x in page.eval_on_selector_all(".tile", "els => els.map(e => e.dataset.prob)")]
    assert shown == pytest.approx(sorted(probs), abs=1e-6)
    assert page.locator("[data-count=total]").first.inner_text() == "(60)"

    # Label the five least off-sample-looking images: 1 = off, 2 = on, moving with j and the arrow key.
    page.locator(".tile").first.click(position={"x": 20, "y": 20})
    keys = ["1", "2", "1", "2", "2"]
    for n, key in enumerate(keys):
        page.keyboard.press(key)
        page.keyboard.press("j" if n % 2 == 0 else "ArrowRight")
    page.wait_for_function(
        "document.querySelectorAll('.tile.labelled').length === 5 && !document.querySelector('.tile.saving')"
    )
    lowest = list(ds.images.order_by("probability")[:5])
    expected = {im.pk: {"1": "off", "2": "on"}[k] for im, k in zip(lowest, keys, strict=True)}
    assert dict(Label.objects.values_list("image_id", "value")) == expected
    screenshot(page, "gallery.png")

    page.reload()
    page.wait_for_selector(".tile")
    page.wait_for_function("document.querySelectorAll('.tile.labelled').length === 5")
    first = page.locator(".tile").first
    assert "me: off-sample" in first.inner_text()

    page.check("#disagreement")
    n_dis = ds.images.filter(disagreement_q()).count()
    assert n_dis >= 1  # low P(off) images labelled off disagree with the prediction
    page.wait_for_function(f"document.querySelectorAll('.tile').length === {n_dis}")
    assert page.locator("[data-count=disagreement]").inner_text() == f"({n_dis})"
    assert "disagreement=true" in page.url
    assert not page.errors


def test_it_shows_a_failed_save_on_the_tile(new_page):
    owner = UserFactory()
    project = ProjectFactory(owner=owner)
    ds = make_ready_dataset(project, n=6)
    page = new_page()
    log_in(page, owner.username, PASSWORD)
    page.goto(f"/datasets/{ds.pk}/gallery/")
    page.wait_for_selector(".tile")
    page.route(
        "**/label/",
        lambda route: route.fulfill(
            status=500, body='{"detail": "database is down"}', content_type="application/json"
        ),
    )
    page.locator(".tile").first.click(position={"x": 20, "y": 20})
    page.keyboard.press("1")
    page.wait_for_selector(".tile.failed .tile-error:not([hidden])")
    assert "database is down" in page.locator(".tile.failed .tile-error").inner_text()
    assert page.locator(".toast.error").count() == 1
    page.unroute("**/label/")
    page.locator(".tile.failed .tile-error button").click()
    page.wait_for_function(
        "!document.querySelector('.tile.failed') && document.querySelector('.tile.labelled')"
    )
    assert Label.objects.count() == 1


def test_it_renders_the_review_charts(new_page):
    owner = UserFactory()
    project = ProjectFactory(owner=owner, name="Review me")
    ds = make_ready_dataset(project, n=40, thumbnails=False)
    rng = np.random.default_rng(2)
    for im in ds.images.all()[:30]:
        set_labels(project, [im], owner, "off" if rng.random() < 0.5 else "on")
    v1 = ModelVersion.objects.create(
        project=project,
        number=1,
        arch="compact",
        task="binary",
        classes=project.classes,
        is_active=True,
        labels_at=timezone.now(),
        held_out_by="images",
        metrics={"overall": {"f1": 0.8, "roc_auc": 0.85}},
    )
    set_probabilities(project, ds, rng.random(40), version=v1)
    # What training stores: each labelled image's out-of-fold probabilities (here random).
    HeldOutScore.objects.bulk_create(
        [
            HeldOutScore(
                image=im,
                model_version=v1,
                label=im.consensus,
                probabilities=[p, 1 - p],
                thresholds=[0.5, 0.5],
            )
            for im, p in zip(ds.images.filter(consensus__isnull=False), rng.random(30), strict=False)
        ]
    )
    page = new_page()
    log_in(page, owner.username, PASSWORD)
    page.goto(f"/p/{project.slug}/review/")
    for fig in ["#fig-roc", "#fig-pr", "#fig-confusion0"]:
        page.wait_for_selector(f"{fig} .main-svg")
    assert page.locator("#fig-roc .scatterlayer .trace").count() == 3  # chance line + v1 + default
    assert page.locator("#per-dataset tbody").count() == 2  # the project, then its one dataset
    screenshot(page, "review.png")
    page.goto(f"/images/{ds.images.first().pk}/")
    page.wait_for_selector("#fig-image .main-svg")
    page.select_option("#cmap", "inferno")
    page.select_option("#scaling", "log")
    page.wait_for_selector("#fig-spectrum .main-svg")
    screenshot(page, "image.png")
    assert not page.errors


def test_it_scrolls_a_project_gallery_past_its_first_page_in_order(new_page):
    """The second page comes through the first page's `next` link (a keyset cursor, issue 13):
    scrolling shows every image once, still sorted, across two datasets sharing indexes."""
    owner = UserFactory()
    project = ProjectFactory(owner=owner, name="Two sections")
    for seed in range(2):
        make_ready_dataset(project, n=80, thumbnails=True, seed=seed, name=f"Section {seed + 1}")
    page = new_page()
    log_in(page, owner.username, PASSWORD)
    page.goto(f"/p/{project.slug}/gallery/")
    page.wait_for_selector(".tile")
    page.wait_for_function("document.querySelectorAll('.tile').length >= 100")
    page.locator(".tile").nth(99).scroll_into_view_if_needed()
    page.mouse.wheel(0, 20000)
    page.wait_for_function("document.querySelectorAll('.tile').length === 160")
    ids = page.eval_on_selector_all(".tile", "els => els.map(e => e.dataset.id)")
    probs = [float(x) for x in page.eval_on_selector_all(".tile", "els => els.map(e => e.dataset.prob)")]
    assert len(set(ids)) == 160
    assert probs == sorted(probs, reverse=True)
    assert "Showing 160 of 160" in page.locator("#shown-count").inner_text()
    assert not page.errors
