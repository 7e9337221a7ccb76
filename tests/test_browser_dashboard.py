"""The fitness dashboard in real Chromium: a red cell opens its reasons; text is escaped."""

from __future__ import annotations

from .browser import chromium_page, screenshot


def test_dashboard_red_cell_opens_its_reasons(mesh):
    assert mesh.govern("apply", "--auto-approve").exit_code == 0
    with mesh.connect() as conn:
        conn.execute("GRANT SELECT ON hcp_master.hcp TO PUBLIC")
    path = mesh.root / "products/hcp/hcp_master/product.yaml"
    path.write_text(path.read_text().replace(
        "description: Golden record", "description: <img src=x onerror=alert(1)> Golden record"))
    out = mesh.root / "fitness.html"
    assert mesh.govern("fitness", "--html", str(out)).exit_code == 1
    with chromium_page() as page:
        dialogs = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(out.as_uri())
        cell = page.locator('td[data-product="hcp/hcp_master"][data-characteristic="secure"]')
        assert cell.get_attribute("class") == "red"
        reasons = cell.locator("li", has_text="secure.blocked-by-default")
        assert not reasons.is_visible()  # closed until clicked
        cell.locator("summary").click()
        assert reasons.is_visible()
        assert "SELECT on hcp_master.hcp to PUBLIC" in reasons.inner_text()
        assert page.locator("h2", has_text="hcp").count() == 1
        assert page.locator("img").count() == 0 and dialogs == []  # escaped, not rendered
        shot = screenshot(page, "fitness-dashboard.png")
    assert shot.stat().st_size > 10_000
