"""The catalog, product pages, dashboard and request form of `govern serve` (the real app
through Starlette's TestClient), over what `govern catalog publish` wrote after a real apply
on PostgreSQL and a real fitness run on OPA."""

from __future__ import annotations

import re

import pytest
import yaml
from fastapi.testclient import TestClient

from govern.engine.requests import RequestStore
from govern.engine.spec import RequestsConfig
from govern.service.app import create_app

from .test_serve_api import SECRET, csrf_of, sign_in

SCRIPT = "<script>alert('desc')</script>"
IMG = '<img src=x onerror="alert(1)">'


def hostile(mesh) -> None:
    """A script in a description and an element as a column name, in hcp/hcp_master."""
    path = mesh.root / "products/hcp/hcp_master/product.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["description"] = f"{SCRIPT} Golden record of HCPs."
    doc["ports"][0]["datasets"][0]["columns"].append(
        {"name": IMG, "type": "text", "description": "hostile column"})
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


@pytest.fixture
def published(mesh):
    """Applied, hcp/hcp_master made red (a grant to PUBLIC) and hostile, fitness run and
    published."""
    assert mesh.govern("apply", "--auto-approve").exit_code == 0
    with mesh.connect() as conn:
        conn.execute("GRANT SELECT ON hcp_master.hcp TO PUBLIC")
    hostile(mesh)
    assert mesh.govern("catalog", "publish").exit_code == 0
    assert mesh.govern("fitness").exit_code == 1  # red: the grant to PUBLIC
    assert mesh.govern("catalog", "publish").exit_code == 0  # now with the fitness result
    return mesh


@pytest.fixture
def client(published):
    app = create_app(published.root, dev=True, secret_key=SECRET)
    with TestClient(app, base_url="https://testserver") as c:
        yield c


def test_pages_need_a_signed_in_user(client):
    for path in ("/catalog", "/catalog/hcp/hcp_master", "/dashboard",
                 "/requests/new?product=hcp/hcp_master"):
        response = client.get(path, follow_redirects=False)
        assert (response.status_code, response.headers["location"]) == (303, "/signin"), path


def test_search_finds_a_product_by_a_column_name(client):
    sign_in(client, "bob")
    page = client.get("/catalog", params={"q": "specialty"}).text
    assert re.findall(r'class="result" data-ref="([^"]+)"', page) == ["hcp/hcp_master"]
    everything = client.get("/catalog").text
    assert len(re.findall(r'class="result"', everything)) == 5
    row = everything[everything.index('data-ref="hcp/hcp_master"'):]
    dots = re.findall(r'title="([a-z-]+): ([a-z/]+)"', row[:row.index("</tr>")])
    assert [ch for ch, _ in dots] == ["discoverable", "addressable", "self-describing", "secure",
                                      "trustworthy", "interoperable"]
    assert dict(dots)["secure"] == "red"
    assert "0 of 5 products match" in client.get("/catalog", params={"q": "nosuchword"}).text


def test_product_page_metadata_lineage_fitness_and_escaping(client):
    sign_in(client, "bob")
    page = client.get("/catalog/hcp/hcp_master").text
    assert SCRIPT not in page and IMG not in page  # never markup
    assert "&lt;script&gt;alert(&#39;desc&#39;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in page
    assert "https://wiki.example.com/dsa/hcp-master" in page
    assert "postgresql://" in page  # each dataset's address
    # lineage: campaign_performance reads hcp_master, drawn downstream with its link
    assert 'data-from="hcp/hcp_master" data-to="commercial/campaign_performance"' in page
    assert '<a href="/catalog/commercial/campaign_performance">' in page
    cell = re.search(r'<td class="(\w+)" data-product="hcp/hcp_master" '
                     r'data-characteristic="secure">(.*?)</td>', page, re.S)
    assert cell.group(1) == "red" and "PUBLIC" in cell.group(2)
    assert 'action="/requests/new"' in page and 'name="port" value="curated"' in page
    assert client.get("/catalog/hcp/nope").status_code == 404


def test_dashboard_shows_every_measured_product_with_reasons(client):
    sign_in(client, "bob")
    page = client.get("/dashboard").text
    cells = re.findall(r'<td class="(\w+)" data-product="([^"]+)" data-characteristic="([^"]+)"',
                       page)
    assert len(cells) == 5 * 6
    assert ("red", "hcp/hcp_master", "secure") in cells
    assert '<a href="/catalog/hcp/hcp_master">hcp/hcp_master</a>' in page
    assert SCRIPT not in page


def test_request_access_from_the_product_page(client, published):
    token = sign_in(client, "bob")
    form = client.get("/requests/new", params={"product": "hcp/hcp_master",
                                               "port": "curated"})
    assert form.status_code == 200 and "https://wiki.example.com/dsa/hcp-master" in form.text
    fields = {"csrf_token": token, "product": "hcp/hcp_master", "port": "curated",
              "access": "read", "purpose": "Territory planning",
              "until": re.search(r'id="until" name="until" value="([^"]+)"', form.text).group(1)}
    refused = client.post("/requests/new", data=fields)  # the agreement not accepted
    assert refused.status_code == 400 and "accept the data sharing agreement" in refused.text
    assert 'Territory planning</textarea>' in refused.text  # what was typed is kept
    no_csrf = client.post("/requests/new", data={**fields, "csrf_token": "x",
                                                  "accept_dsa": "yes"})
    assert no_csrf.status_code == 403
    done = client.post("/requests/new", data={**fields, "accept_dsa": "yes"},
                       follow_redirects=False)
    assert done.status_code == 303
    request_id = done.headers["location"].rsplit("/", 1)[1]
    assert "waiting for the owner" in client.get(done.headers["location"]).text
    store = RequestStore.for_config(RequestsConfig(), published.root, migrate=False)
    try:
        made = store.get(request_id)
        assert (made.requester, made.product, made.port, made.status) == (
            "bob", "hcp/hcp_master", "curated", "pending")
    finally:
        store.close()
    assert csrf_of(client.get("/").text) == token


def test_a_stewards_note_made_in_the_catalog_is_shown_and_survives_a_publish(client, published):
    from govern.engine.catalog import BuiltinCatalog

    store = RequestStore.for_config(RequestsConfig(), published.root, migrate=False)
    try:
        BuiltinCatalog(store.engine).edit_extra("hcp/hcp_master", "description",
                                                "Ask <b>Anna</b> before joining on email.")
    finally:
        store.close()
    path = published.root / "products/hcp/hcp_master/product.yaml"
    path.write_text(path.read_text().replace("Golden record of HCPs.", "Golden HCP record."))
    assert published.govern("catalog", "publish").exit_code == 0
    sign_in(client, "bob")
    page = client.get("/catalog/hcp/hcp_master").text
    assert "Golden HCP record." in page  # govern's field, updated
    assert "Ask &lt;b&gt;Anna&lt;/b&gt; before joining on email." in page  # the catalog's, kept


def test_hostile_text_is_escaped_on_every_page(client):
    sign_in(client, "bob")
    for path, params in (("/catalog", {}), ("/catalog", {"q": "golden"}),
                         ("/catalog", {"q": SCRIPT}), ("/catalog/hcp/hcp_master", {}),
                         ("/dashboard", {}), ("/requests/new", {"product": "hcp/hcp_master"})):
        response = client.get(path, params=params)
        assert response.status_code == 200, (path, params)
        assert SCRIPT not in response.text and IMG not in response.text, (path, params)
        assert "<script" not in response.text, (path, params)
    listed = client.get("/catalog", params={"q": "golden"}).text
    assert "&lt;script&gt;alert(&#39;desc&#39;)&lt;/script&gt; Golden" in listed
