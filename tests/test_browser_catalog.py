"""The catalog and the dashboard of `govern serve` in a real Chromium (Debian's, driven by
Playwright), after a real apply, fitness run and publish: search finds a product by a column
name, the lineage graph renders, a red cell opens its reasons, "request access" leads into
the request flow, and hostile text never runs. Screenshots go to tests/artifacts/."""

from __future__ import annotations

import shutil

from .browser import ARTIFACTS, chromium_page, screenshot
from .test_serve_catalog import published  # noqa: F401  (the fixture)
from .test_serve_crash import Server


def test_search_lineage_red_cell_and_request_in_chromium(published, tmp_path):  # noqa: F811
    server = Server(published.root, tmp_path / "serve.log").start()
    try:
        with chromium_page() as page:
            dialogs: list[str] = []
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto(f"{server.url}/catalog")
            assert page.url.endswith("/signin")
            page.get_by_label("User name").fill("bob")
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(f"{server.url}/")
            page.get_by_role("navigation").get_by_role("link", name="Catalog").click()
            page.get_by_label("Search names, descriptions, columns and owners").fill("specialty")
            page.get_by_role("button", name="Search").click()
            page.wait_for_url("**/catalog?q=specialty")
            results = page.locator("tr.result")
            assert results.count() == 1
            results.get_by_role("link", name="hcp/hcp_master").click()
            page.wait_for_url(f"{server.url}/catalog/hcp/hcp_master")

            graph = page.locator("svg.lineage")
            box = graph.bounding_box()
            assert box is not None and box["width"] > 300 and box["height"] > 20
            assert graph.locator("g.node").count() == 2 and graph.locator("path.edge").count() == 1
            assert graph.locator("g.node-focus text").text_content() == "hcp/hcp_master"

            cell = page.locator('td[data-product="hcp/hcp_master"][data-characteristic="secure"]')
            assert cell.get_attribute("class") == "red"
            reason = cell.locator("li", has_text="secure.blocked-by-default")
            assert not reason.is_visible()
            cell.locator("summary").click()
            assert reason.is_visible() and "PUBLIC" in reason.inner_text()
            assert page.locator("#description").inner_text().startswith("<script>")
            assert page.locator("main img").count() == 0
            screenshot(page, "catalog-product.png")

            page.get_by_role("button", name="Request access to curated").click()
            page.wait_for_url("**/requests/new?product=hcp%2Fhcp_master&port=curated")
            page.get_by_label("Purpose (kept in the audit trail)").fill("Territory planning")
            page.get_by_label("I accept this agreement").check()
            page.get_by_role("button", name="Request access").click()
            page.wait_for_url(f"{server.url}/requests/req-*")
            assert page.locator("#status").inner_text() == "pending"
            assert "waiting for the owner" in page.get_by_role("status").inner_text()
            screenshot(page, "catalog-requested.png")

            page.get_by_role("navigation").get_by_role("link", name="Fitness").click()
            red = page.locator('td[data-product="hcp/hcp_master"][data-characteristic="secure"]')
            red.locator("summary").click()
            assert red.locator("li", has_text="PUBLIC").is_visible()
            assert page.locator("td[data-product]").count() == 30
            shot = screenshot(page, "catalog-dashboard.png")
            assert dialogs == [], "injected script ran"
        assert shot.stat().st_size > 10_000
    finally:
        server.stop()
        ARTIFACTS.mkdir(exist_ok=True)
        shutil.copy(server.log, ARTIFACTS / "catalog-serve.log")
