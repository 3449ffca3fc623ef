"""The web map and impact explorer in a real browser: Debian's headless Chromium driven by
Playwright against a real ``servicegraph serve --demo``. Every count the page shows is compared
with what the public GraphQL API answers for the same question. Screenshots go to the test's
temporary directory. With ``CI`` set a missing browser fails the run (like Neo4j)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.test_everyday import _free_port, _start_demo, _token, wait_until_serving

MAP = """query($root: ID!, $types: [String!]) {
    dependencyMap(rootId: $root, direction: BOTH, maxDepth: 3, types: $types) {
    nodes { id class } edges { source target } } }"""
IMPACT = """query($ids: [ID!]!) { impact(ciIds: $ids) { impacted { ci { id } status path }
    services { service { id name } } slas { sla { id } } customers { customer { id } } } }"""


def chromium() -> str:
    found = os.environ.get("SERVICEGRAPH_CHROMIUM") or shutil.which("chromium")
    if found:
        return found
    message = "no chromium for the browser tests: `make test` installs Debian's chromium"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message + " (outside CI only)")


class Site:
    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token

    def impact_types(self) -> list[str]:
        """The relationship types the page maps by default: those that carry impact."""
        types = self.gql("{ model { relationshipTypes { name impact } } }")["model"]
        return [t["name"] for t in types["relationshipTypes"] if t["impact"] != "none"]

    def map(self, root: str) -> dict[str, Any]:
        """The API's map for what the page asks by default (both ways, 3 hops, impact types)."""
        return self.gql(MAP, root=root, types=self.impact_types())["dependencyMap"]  # type: ignore[no-any-return]

    def gql(self, query: str, **variables: Any) -> dict[str, Any]:
        body = httpx.post(f"{self.url}/graphql", json={"query": query, "variables": variables},
                          headers={"Authorization": f"Bearer {self.token}"}, timeout=60).json()  # fmt: skip
        assert "errors" not in body, body
        return body["data"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    db = tmp_path_factory.mktemp("web") / "demo.db"
    port = _free_port()
    proc, lines = _start_demo(db, port)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_serving(url, proc)
        yield Site(url, _token(lines))
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    executable = chromium()
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, site: Site) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1500, "height": 950})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda e: errors.append(str(e)))
    opened.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    opened.goto(site.url + "/")
    yield opened
    context.close()
    assert not errors, errors  # no script error, no content-security-policy violation


def sign_in(page: Any, token: str) -> None:
    page.fill("#token", token)
    page.click("#token-form button[type=submit]")
    page.wait_for_selector("#whoami:has-text('signed in')")


def open_map(page: Any, ident: str) -> None:
    """Search for the CI by its id and open its map from the results."""
    page.fill("#search", ident)
    page.click("#search-button")
    page.click(f"#results button.result[data-id='{ident}']")
    page.wait_for_selector("body[data-map-ready]", state="attached")


def seed_with_outage(site: Site) -> tuple[str, str, dict[str, Any]]:
    """A CI of the demo whose failure takes something DOWN and hits a service on its map (of a
    readable size)."""
    for cls in ("application_instance", "database_instance", "vm", "host", "storage_array"):
        found = site.gql("query($c: String) { cis(filter: {class: $c}, first: 40) { edges { node "
                         "{ id name } } } }", c=cls)["cis"]["edges"]  # fmt: skip
        for edge in found:
            ident = edge["node"]["id"]
            impact = site.gql(IMPACT, ids=[ident])["impact"]
            down = [r for r in impact["impacted"] if r["status"] == "DOWN"]
            on_map = {n["id"] for n in site.map(ident)["nodes"]}
            shown = [s for s in impact["services"] if s["service"]["id"] in on_map]
            if down and shown and len(on_map) <= 400:
                return ident, edge["node"]["name"], impact
    raise AssertionError("the demo estate has no CI whose failure takes a service down")


def test_a_first_time_user_finds_a_ci_sees_its_map_and_its_blast_radius(
    page: Any, site: Site, tmp_path: Path
) -> None:
    seed, name, impact = seed_with_outage(site)
    sign_in(page, site.token)
    open_map(page, seed)
    api_map = site.map(seed)
    assert int(page.inner_text("#map-count")) == len(api_map["nodes"])
    assert f"Showing {len(api_map['nodes'])} of {len(api_map['nodes'])} CIs" in (
        page.inner_text("#map-info")
    )
    assert page.inner_text("#details h2") == name  # the panel shows the root
    page.screenshot(path=str(tmp_path / "map.png"))

    page.click("#toggle-seed")  # select the CI, then "what if it fails?"
    page.click("#impact")
    page.wait_for_selector("#impact-result:not([hidden])")
    down = sum(1 for r in impact["impacted"] if r["status"] == "DOWN")
    assert int(page.inner_text("#impact-down")) == down
    assert int(page.inner_text("#services-count")) == len(impact["services"])
    assert int(page.inner_text("#slas-count")) == len(impact["slas"])
    assert int(page.inner_text("#customers-count")) == len(impact["customers"])
    assert "DOWN" in page.inner_text("#impact-summary")

    # click an impacted service on the map: its explanation path lights up, the panel shows it
    on_map = {n["id"] for n in api_map["nodes"]}
    service = next(s["service"] for s in impact["services"] if s["service"]["id"] in on_map)
    path = next(r["path"] for r in impact["impacted"] if r["ci"]["id"] == service["id"])
    box = page.locator("#cy").bounding_box()
    spot = page.evaluate("(id) => servicegraphMap.cy.getElementById(id).renderedPosition()",
                         service["id"])  # fmt: skip
    page.mouse.click(box["x"] + spot["x"], box["y"] + spot["y"])
    page.wait_for_selector(f"#details h2:has-text('{service['name']}')")
    lit = page.evaluate("() => servicegraphMap.cy.nodes('.path').map((n) => n.id())")
    assert set(lit) == set(path) and seed in lit and service["id"] in lit
    assert page.evaluate("() => servicegraphMap.cy.edges('.path').length") >= len(path) - 1
    assert " → ".join(path) in page.inner_text("#path")
    assert page.locator("#details table.attributes th").count() > 0  # its attributes
    page.screenshot(path=str(tmp_path / "impact.png"))


def test_a_wrong_token_is_refused_with_a_message(page: Any) -> None:
    sign_in_attempt = "sg_not-a-real-token"
    page.fill("#token", sign_in_attempt)
    page.click("#token-form button[type=submit]")
    page.wait_for_selector("#token-status:has-text('refused')")
    assert page.is_visible("#token-form")
    assert page.inner_text("#whoami") == ""


def test_keyboard_alone_reaches_search_and_the_impact_button(page: Any, site: Site) -> None:
    sign_in(page, site.token)
    page.locator("body").focus()
    reached: list[str] = []
    for _ in range(40):
        page.keyboard.press("Tab")
        reached.append(page.evaluate("() => document.activeElement.id"))
        if "search" in reached and "impact" in reached:
            break
    assert "search" in reached and "search-button" in reached
    seed, _, _ = seed_with_outage(site)
    page.focus("#search")
    page.keyboard.type(seed)
    page.keyboard.press("Enter")  # the search form submits
    first = page.locator(f"#results button.result[data-id='{seed}']")
    first.wait_for()
    first.focus()
    page.keyboard.press("Enter")  # opens its map
    page.wait_for_selector("body[data-map-ready]", state="attached")
    add = page.locator("#results button[aria-label^='add']").first
    add.focus()
    page.keyboard.press("Enter")  # into the failure set
    page.focus("#impact")
    page.keyboard.press("Enter")
    page.wait_for_selector("#impact-result:not([hidden])")
    assert "impacted" in page.inner_text("#impact-summary")
    assert "impact" in reached  # the impact button is in the tab order


def test_large_maps_are_capped_and_say_so(page: Any, site: Site) -> None:
    sign_in(page, site.token)
    root = site.gql(
        '{ cis(filter: {class: "business_service"}, first: 1) { edges { node { id } } } }'
    )["cis"]["edges"][0]["node"]["id"]
    page.evaluate("() => { servicegraphMap.options.cap = 10; }")  # a small cap for the test
    open_map(page, root)
    info = page.inner_text("#map-info")
    total = len(site.map(root)["nodes"])
    assert total > 10 and f"Showing 10 of {total} CIs" in info and "at most 10 are drawn" in info
    more = page.evaluate("() => servicegraphMap.cy.nodes('.more').map((n) => n.data('label'))")
    assert more and all("show more" in x for x in more)  # the rest, collapsed by class
    hidden = sum(int(x.split()[0].lstrip("+")) for x in more)
    assert hidden == total - 10
    box = page.locator("#cy").bounding_box()
    spot = page.evaluate("() => servicegraphMap.cy.nodes('.more')[0].renderedPosition()")
    page.mouse.click(box["x"] + spot["x"], box["y"] + spot["y"])  # "show more"
    expect(page.locator("#map-count")).not_to_have_text("10")
    assert int(page.inner_text("#map-count")) > 10


def test_the_map_downloads_as_png_svg_graphml_and_cytoscape_json(
    page: Any, site: Site, tmp_path: Path
) -> None:
    import json
    import xml.etree.ElementTree as ET

    import networkx as nx

    seed, _, _ = seed_with_outage(site)
    sign_in(page, site.token)
    open_map(page, seed)
    ids = {n["id"] for n in site.map(seed)["nodes"]}
    files = {}
    for kind in ("png", "svg", "graphml", "cyjs"):
        with page.expect_download() as download:
            page.click(f"#dl-{kind}")
        files[kind] = tmp_path / download.value.suggested_filename
        download.value.save_as(files[kind])
    assert files["png"].read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    svg = ET.parse(files["svg"]).getroot()
    texts = " ".join(t.text or "" for t in svg.iter("{http://www.w3.org/2000/svg}text"))
    assert svg.tag.endswith("svg") and len(
        list(svg.iter("{http://www.w3.org/2000/svg}rect"))
    ) >= len(ids)
    assert "(" in texts  # the labels, with their class
    assert set(nx.read_graphml(files["graphml"]).nodes) == ids
    cyjs = json.loads(files["cyjs"].read_text())
    assert {n["data"]["id"] for n in cyjs["elements"]["nodes"]} == ids
