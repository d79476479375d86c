"""axe-core (bundled by axe-playwright-python, never from a CDN) on every page, light and dark."""

from __future__ import annotations

import numpy as np
import pytest

from tests.browser.conftest import log_in, screenshot
from tests.factories import PASSWORD, ProjectFactory, UserFactory
from tests.gallery_data import make_ready_dataset
from webapp.datasets.labels import set_labels

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BLOCKING = {"serious", "critical"}


def _violations(page) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    found = []
    for v in results.response["violations"]:
        if v["impact"] in BLOCKING:
            targets = [", ".join(n["target"]) for n in v["nodes"][:3]]
            found.append(f"{v['id']} ({v['impact']}): {v['help']} at {targets}")
    return found


@pytest.fixture
def site(transactional_db):
    owner = UserFactory(username="axel")
    project = ProjectFactory(owner=owner, name="Brain")
    ds = make_ready_dataset(project, n=12, probs=np.linspace(0.05, 0.95, 12))
    ims = list(ds.images.order_by("index"))
    set_labels(project, ims[:4], owner, "off")
    set_labels(project, ims[4:6], owner, None, unsure=True)
    yeast = ProjectFactory(owner=owner, name="Yeast", task="multiclass", classes="ER,bud,nucleus")
    make_ready_dataset(yeast, n=4, probs=np.full((4, 3), 1 / 3))
    return {"owner": owner, "project": project, "dataset": ds, "image": ims[0], "yeast": yeast}


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_it_has_no_serious_accessibility_violations_on_any_page(new_page, site, scheme):
    page = new_page()
    page.emulate_media(color_scheme=scheme)
    pages = ["/accounts/login/", "/accounts/signup/"]
    problems: dict[str, list[str]] = {}
    for url in pages:
        page.goto(url)
        problems[url] = _violations(page)
    log_in(page, "axel", PASSWORD)
    p, ds = site["project"], site["dataset"]
    pages = [
        "/",
        f"/p/{p.slug}/",
        f"/p/{p.slug}/gallery/",
        f"/datasets/{ds.pk}/",
        f"/datasets/{ds.pk}/gallery/",
        f"/images/{site['image'].pk}/",
        f"/p/{p.slug}/review/",
        f"/p/{p.slug}/import/",
        f"/p/{p.slug}/labels/",
        f"/projects/{p.slug}/members/",
        f"/projects/{p.slug}/keys/",
        f"/p/{site['yeast'].slug}/gallery/",
        f"/datasets/{ds.pk}/gallery/?mode=next",
        f"/p/{site['yeast'].slug}/gallery/?mode=next",
        "/projects/new/",
        "/collections/",
        "/accounts/profile/",
        "/accounts/password_change/",
    ]
    for url in pages:
        page.goto(url)
        if "gallery" in url:
            page.wait_for_selector(".tile")
            page.wait_for_function(
                "!document.querySelector('#shown-count').textContent.startsWith('Loading')"
            )
        page.wait_for_load_state("networkidle")
        problems[url] = _violations(page)
        if url == f"/datasets/{ds.pk}/gallery/":
            screenshot(page, f"gallery-{scheme}.png")
    bad = {u: v for u, v in problems.items() if v}
    assert not bad, "\n".join(f"{u}: {v}" for u, v in bad.items())
    assert not page.errors


def test_it_reaches_the_file_chooser_with_the_keyboard(new_page, site):
    page = new_page()
    log_in(page, "axel", PASSWORD)
    page.goto(f"/p/{site['project'].slug}/")
    page.focus("#dropzone")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "files"
    assert page.evaluate("getComputedStyle(document.querySelector('.file-button')).outlineStyle") == "solid"
