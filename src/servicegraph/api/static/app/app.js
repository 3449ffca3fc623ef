/* servicegraph web app: search, dependency map, impact explorer and details, all through the
 * public GraphQL API (/graphql) with the user's bearer token (kept in sessionStorage only).
 * The map itself is drawn by map.js (SGMap).
 */
(function () {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const TOKEN_KEY = "servicegraph-token";
  const OPEN_INCIDENTS = ["new", "in_progress", "on_hold"];
  const state = { root: null, seeds: [], after: null, query: null, impact: null, types: [] };
  let map = null;

  // -- the API ---------------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(message, code) { super(message); this.code = code; }
  }

  async function gql(query, variables) {
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (!token) { askForToken("Paste an API token to start (servicegraph token create, or the one `make demo` printed)."); throw new ApiError("no token", "UNAUTHENTICATED"); }
    let response;
    try {
      response = await fetch("/graphql", {
        method: "POST",
        headers: { "Content-Type": "application/json", Authorization: "Bearer " + token },
        body: JSON.stringify({ query: query, variables: variables || {} }),
      });
    } catch (err) {
      throw new ApiError("The server cannot be reached: " + err.message, "NETWORK");
    }
    const body = await response.json().catch(() => ({}));
    const errors = body.errors || [];
    if (errors.length) {
      const code = (errors[0].extensions || {}).code || "ERROR";
      if (code === "UNAUTHENTICATED") {
        sessionStorage.removeItem(TOKEN_KEY);
        askForToken("The server refused this token (wrong, revoked or expired). Paste a valid token.");
      }
      const problems = ((errors[0].extensions || {}).problems || [])
        .map((p) => p.field + ": " + p.problem).join("; ");
      throw new ApiError(errors[0].message + (problems ? " — " + problems : ""), code);
    }
    return body.data;
  }

  function say(text, kind) {
    const box = $("message");
    box.textContent = text || "";
    box.title = text || "";
    box.className = kind || "";
  }

  async function guarded(work) {
    try {
      say("");
      return await work();
    } catch (err) {
      if (err.code !== "UNAUTHENTICATED") say(err.message, "error");
      return null;
    }
  }

  // -- token -----------------------------------------------------------------------------------
  function askForToken(text) {
    $("token-form").hidden = false;
    $("token-status").textContent = text;
    $("token-status").className = "error";
    $("whoami").textContent = "";
    $("token").focus();
  }

  async function useToken(token) {
    sessionStorage.setItem(TOKEN_KEY, token.trim());
    const data = await guarded(() => gql("{ me { user role } model { classes { name abstract } relationshipTypes { name impact } } }"));
    if (!data) return;
    $("token-form").hidden = true;
    $("token-status").textContent = "";
    $("whoami").textContent = "signed in as " + data.me.user + " (" + data.me.role + ")";
    state.types = data.model.relationshipTypes;
    fillTypes();
    $("classes").textContent = "";
    for (const c of data.model.classes) $("classes").append(Object.assign(document.createElement("option"), { value: c.name }));
    $("search").focus();
  }

  function fillTypes() {
    const box = $("types");
    box.textContent = "";
    for (const t of state.types) {
      const id = "type-" + t.name;
      const row = document.createElement("label");
      row.htmlFor = id;
      const check = document.createElement("input");
      check.type = "checkbox";
      check.id = id;
      check.value = t.name;
      check.checked = t.impact !== "none";
      row.append(check, " " + t.name);
      box.append(row);
    }
  }

  function chosenTypes() {
    const all = Array.from(document.querySelectorAll("#types input"));
    const on = all.filter((c) => c.checked).map((c) => c.value);
    return on.length === all.length ? null : on;
  }

  // -- search ----------------------------------------------------------------------------------
  const SEARCH = `query($f: CIFilter, $after: String) {
    cis(filter: $f, first: 20, after: $after) {
      totalCount edges { node { id name class status } } pageInfo { hasNextPage endCursor } } }`;

  async function search(more) {
    if (!more) {
      state.after = null;
      state.query = { text: $("search").value.trim() || null, class: $("search-class").value.trim() || null };
      $("results").textContent = "";
    }
    const data = await guarded(() => gql(SEARCH, { f: state.query, after: state.after }));
    if (!data) return;
    const page = data.cis;
    $("search-count").textContent = page.totalCount + " CI" + (page.totalCount === 1 ? "" : "s") + " found";
    for (const edge of page.edges) {
      const ci = edge.node;
      const item = document.createElement("li");
      const open = document.createElement("button");
      open.className = "result";
      open.textContent = ci.name + " (" + ci.class + ")";
      open.title = ci.id + (ci.status === "retired" ? " — retired" : "");
      open.dataset.id = ci.id;
      open.addEventListener("click", () => openMap(ci.id));
      const add = document.createElement("button");
      add.className = "small";
      add.textContent = "+ fail";
      add.setAttribute("aria-label", "add " + ci.name + " to the failure set");
      add.addEventListener("click", () => toggleSeed(ci.id, ci.name));
      item.append(open, " ", add, document.createElement("br"), Object.assign(document.createElement("small"), { textContent: ci.id }));
      $("results").append(item);
    }
    state.after = page.pageInfo.endCursor;
    $("more-results").hidden = !page.pageInfo.hasNextPage;
  }

  // -- map -------------------------------------------------------------------------------------
  const MAP = `query($root: ID!, $direction: MapDirection!, $depth: Int, $types: [String!]) {
    dependencyMap(rootId: $root, direction: $direction, maxDepth: $depth, types: $types) {
      nodes { id name class family status distance minUp members } edges { source target type impact } } }`;

  function mapArgs(root) {
    const depth = parseInt($("depth").value, 10);
    return { root: root, direction: $("direction").value, depth: Number.isFinite(depth) ? depth : null,
             types: chosenTypes() };
  }

  async function openMap(root) {
    const started = performance.now();
    const data = await guarded(() => gql(MAP, mapArgs(root)));
    if (!data) return;
    state.root = root;
    state.impact = null;
    map.show(data.dependencyMap, root);
    renderImpact(null);
    drawLegend();
    document.body.dataset.mapReady = String(performance.now() - started);
    await showDetails(root);
  }

  async function expand(id) {
    const data = await guarded(() => gql(MAP, Object.assign(mapArgs(id), { depth: 1 })));
    if (!data) return;
    map.merge(data.dependencyMap);
    if (state.impact) map.overlay(state.impact, state.seeds.map((s) => s.id));
    drawLegend();
  }

  function mapInfo(counts) {
    const capped = counts.total > counts.shown;
    $("map-info").textContent = counts.total === 0 ? "" :
      "Showing " + counts.shown + " of " + counts.total + " CIs" +
      (capped ? " — at most " + counts.cap + " are drawn at once; the dotted boxes hold the rest by class (click one to show 500 more)." : ".");
    $("map-count").textContent = String(counts.shown);
  }

  function drawLegend() {
    const box = $("legend");
    box.textContent = "";
    for (const item of map.legend()) {
      const row = document.createElement("li");
      const swatch = document.createElement("span");
      swatch.className = "swatch " + item.shape;
      swatch.style.background = item.colour;
      row.append(swatch, " " + item.label + ": " + item.classes.join(", "));
      box.append(row);
    }
    for (const [name, s] of Object.entries(SGMap.STATUS)) {
      const row = document.createElement("li");
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = s.colour;
      row.append(swatch, " " + s.text + (name === "FAILED" ? " (a CI you fail)" : ""));
      box.append(row);
    }
    const lines = document.createElement("li");
    lines.textContent = "— required dependency · - - redundant (group member) · ··· no impact";
    box.append(lines);
  }

  // -- impact ----------------------------------------------------------------------------------
  const IMPACT = `query($ids: [ID!]!) { impact(ciIds: $ids) {
    totalImpacted impacted { ci { id } status path }
    services { service { id name } status } slas { sla { id name } status services }
    customers { customer { id name } slas } } }`;

  function toggleSeed(id, name) {
    const at = state.seeds.findIndex((s) => s.id === id);
    if (at >= 0) state.seeds.splice(at, 1);
    else state.seeds.push({ id: id, name: name || id });
    renderSeeds();
  }

  function renderSeeds() {
    const box = $("seeds");
    box.textContent = "";
    if (!state.seeds.length) { box.textContent = "none yet: click a CI, then “Add to failure set”"; }
    for (const s of state.seeds) {
      const item = document.createElement("li");
      const remove = document.createElement("button");
      remove.className = "small";
      remove.textContent = "remove";
      remove.setAttribute("aria-label", "remove " + s.name + " from the failure set");
      remove.addEventListener("click", () => toggleSeed(s.id));
      item.append(s.name + " ", remove);
      box.append(item);
    }
  }

  async function runImpact() {
    if (!state.seeds.length) { say("Add at least one CI to the failure set first.", "error"); return; }
    const ids = state.seeds.map((s) => s.id);
    const data = await guarded(() => gql(IMPACT, { ids: ids }));
    if (!data) return;
    const started = performance.now();
    state.impact = data.impact;
    const counts = map.overlay(data.impact, ids);
    document.body.dataset.overlayMs = String(performance.now() - started);
    renderImpact(data.impact, counts);
  }

  /* A side list; each item a button that shows the CI and why it is hit (keyboard reachable). */
  function list(id, items, text, ident) {
    const box = $(id);
    box.textContent = "";
    for (const item of items) {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.className = "link";
      button.textContent = text(item);
      button.dataset.id = ident(item);
      button.addEventListener("click", () => onNode(ident(item)));
      li.append(button);
      box.append(li);
    }
  }

  function renderImpact(impact, counts) {
    $("impact-result").hidden = !impact;
    if (!impact) return;
    const down = impact.impacted.filter((r) => r.status === "DOWN").length;
    const degraded = impact.impacted.length - down;
    $("impact-summary").textContent = impact.totalImpacted + " CIs impacted: " + down + " DOWN, " +
      degraded + " DEGRADED" + (counts && counts.outside ? " (" + counts.outside + " of them are outside this map)" : "") +
      ". Click an impacted CI to see why (its path from what failed).";
    $("impact-down").textContent = String(down);
    $("services-count").textContent = String(impact.services.length);
    $("slas-count").textContent = String(impact.slas.length);
    $("customers-count").textContent = String(impact.customers.length);
    list("impact-services", impact.services, (s) => s.service.name + " — " + s.status, (s) => s.service.id);
    list("impact-slas", impact.slas, (s) => s.sla.name + " — " + s.status, (s) => s.sla.id);
    list("impact-customers", impact.customers, (c) => c.customer.name + " (" + c.slas.length + " SLA" + (c.slas.length === 1 ? "" : "s") + ")", (c) => c.customer.id);
  }

  function clearImpact() {
    state.impact = null;
    map.clearOverlay();
    renderImpact(null);
    $("path").textContent = "";
  }

  // -- details ---------------------------------------------------------------------------------
  const DETAILS = `query($id: ID!, $entity: String!, $open: [String!]) {
    ci(id: $id) { id name class status version attributes
                  relationships { type sourceId targetId } }
    journal(entity: $entity, first: 200) { seq at actor op }
    incidents(filter: { ci: $id, states: $open }, first: 20) { edges { node { id name state priority } } } }`;

  function row(table, key, value) {
    const tr = document.createElement("tr");
    const th = document.createElement("th");
    th.scope = "row";
    th.textContent = key;
    const td = document.createElement("td");
    td.textContent = typeof value === "object" ? JSON.stringify(value) : String(value);
    tr.append(th, td);
    table.append(tr);
  }

  async function showDetails(id) {
    const data = await guarded(() => gql(DETAILS, { id: id, entity: id, open: OPEN_INCIDENTS }));
    if (!data) return;
    const ci = data.ci;
    const panel = $("details");
    panel.textContent = "";
    const h = document.createElement("h2");
    h.textContent = ci.name;
    const sub = document.createElement("p");
    sub.textContent = ci.class + " · " + ci.id + " · version " + ci.version + " · " + ci.status;
    const actions = document.createElement("p");
    const seed = document.createElement("button");
    const isSeed = state.seeds.some((s) => s.id === ci.id);
    seed.textContent = isSeed ? "Remove from failure set" : "Add to failure set";
    seed.id = "toggle-seed";
    seed.addEventListener("click", () => { toggleSeed(ci.id, ci.name); showDetails(ci.id); });
    const grow = document.createElement("button");
    grow.textContent = "Expand here";
    grow.addEventListener("click", () => expand(ci.id));
    const centre = document.createElement("button");
    centre.textContent = "Map from here";
    centre.addEventListener("click", () => openMap(ci.id));
    actions.append(seed, " ", grow, " ", centre);
    const attrs = document.createElement("table");
    attrs.className = "attributes";
    for (const [k, v] of Object.entries(ci.attributes).sort()) row(attrs, k, v);
    const rels = document.createElement("ul");
    for (const r of ci.relationships) {
      const li = document.createElement("li");
      li.textContent = r.sourceId === ci.id ? "→ " + r.type + " " + r.targetId : "← " + r.type + " from " + r.sourceId;
      rels.append(li);
    }
    const history = document.createElement("ol");
    for (const e of data.journal.slice().reverse().slice(0, 50)) {
      const li = document.createElement("li");
      li.textContent = e.at.slice(0, 19).replace("T", " ") + " " + e.actor + " " + e.op + " (seq " + e.seq + ")";
      history.append(li);
    }
    const incidents = document.createElement("ul");
    for (const edge of data.incidents.edges) {
      const li = document.createElement("li");
      li.textContent = edge.node.id + " P" + edge.node.priority + " " + edge.node.state + ": " + edge.node.name;
      incidents.append(li);
    }
    if (!data.incidents.edges.length) incidents.append(Object.assign(document.createElement("li"), { textContent: "none open" }));
    const heading = (t) => Object.assign(document.createElement("h3"), { textContent: t });
    panel.append(h, sub, actions, heading("Attributes"), attrs,
                 heading("Relationships (" + ci.relationships.length + ")"), rels,
                 heading("Open incidents"), incidents,
                 heading("History (newest first, from the journal)"), history);
  }

  async function onNode(id) {
    if (state.impact) {
      const path = map.highlightPath(id);
      const row = state.impact.impacted.find((r) => r.ci.id === id);
      $("path").textContent = row ? "Why " + id + " is " + row.status + ": " + row.path.join(" → ") +
        (path ? "" : " (not all of it is on this map)") : "";
    }
    await showDetails(id);
  }

  // -- downloads -------------------------------------------------------------------------------
  function save(blob, name) {
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = name;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  }

  async function download(kind) {
    if (!state.root) { say("Open a map first.", "error"); return; }
    const stem = "map-" + state.root.replace(/[^A-Za-z0-9_.-]+/g, "_");
    if (kind === "png") save(map.png(), stem + ".png");
    else if (kind === "svg") save(new Blob([map.svg()], { type: "image/svg+xml" }), stem + ".svg");
    else if (kind === "cyjs") save(new Blob([JSON.stringify(map.cyjs(), null, 1)], { type: "application/json" }), stem + ".cyjs");
    else if (kind === "graphml") {
      const q = `query($root: ID!, $direction: MapDirection!, $depth: Int, $types: [String!]) {
        dependencyMap(rootId: $root, direction: $direction, maxDepth: $depth, types: $types) { graphml } }`;
      const data = await guarded(() => gql(q, mapArgs(state.root)));
      if (data) save(new Blob([data.dependencyMap.graphml], { type: "application/xml" }), stem + ".graphml");
    }
  }

  // -- wiring ----------------------------------------------------------------------------------
  document.addEventListener("DOMContentLoaded", () => {
    map = new SGMap($("cy"), { onNode: (id) => onNode(id), onInfo: mapInfo });
    window.servicegraphMap = map; // for the browser console (and the browser tests)
    $("token-form").addEventListener("submit", (e) => { e.preventDefault(); useToken($("token").value); });
    $("search-form").addEventListener("submit", (e) => { e.preventDefault(); search(false); });
    $("more-results").addEventListener("click", () => search(true));
    $("redraw").addEventListener("click", () => state.root && openMap(state.root));
    $("fit").addEventListener("click", () => map.cy.fit(undefined, 20));
    $("impact").addEventListener("click", runImpact);
    $("clear-impact").addEventListener("click", clearImpact);
    for (const kind of ["png", "svg", "graphml", "cyjs"]) $("dl-" + kind).addEventListener("click", () => download(kind));
    renderSeeds();
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) useToken(token);
    else askForToken("Paste an API token to start (servicegraph token create, or the one `make demo` printed).");
  });
})();
