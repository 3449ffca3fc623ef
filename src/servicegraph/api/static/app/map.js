/* servicegraph dependency map: draws a map (the GraphQL `dependencyMap` shape) with
 * cytoscape.js and a layered dagre layout, services at the top and infrastructure at the bottom.
 * Used by the web app (/) and by the self-contained HTML file of `servicegraph map --format html`.
 *
 * Owns: styling by family (colour-blind-safe Okabe-Ito colours, a shape per family, the class in
 * the label), redundancy groups drawn as boxes with their min_up, collapsing what is past the
 * drawing cap into "show more" nodes per class, the impact overlay (status in colour *and* text),
 * path highlighting, and the exports of the view (PNG, SVG, Cytoscape JSON, GraphML).
 */
(function (global) {
  "use strict";

  // Okabe-Ito: distinguishable with the common colour-vision deficiencies
  const FAMILY = {
    service: { colour: "#0072B2", shape: "round-rectangle", label: "services" },
    software: { colour: "#56B4E9", shape: "ellipse", label: "applications, databases, middleware" },
    compute: { colour: "#009E73", shape: "rectangle", label: "compute (hosts, VMs)" },
    cluster: { colour: "#009E73", shape: "octagon", label: "clusters" },
    storage: { colour: "#CC79A7", shape: "barrel", label: "storage" },
    network_device: { colour: "#F0E442", shape: "diamond", label: "network devices" },
    location: { colour: "#999999", shape: "hexagon", label: "locations" },
    other: { colour: "#BBBBBB", shape: "tag", label: "other" },
  };
  const STATUS = {
    FAILED: { colour: "#000000", text: "✖ FAILED" },
    DOWN: { colour: "#D55E00", text: "▼ DOWN" },
    DEGRADED: { colour: "#E69F00", text: "◐ DEGRADED" },
  };
  const CAP = 1500; // CIs drawn at once; the rest is collapsed by class ("show more")

  function family(node) {
    return FAMILY[node.family] ? node.family : "other";
  }

  function label(node) {
    const status = node.impact ? STATUS[node.impact].text + "\n" : "";
    return status + node.name + "\n(" + node.class + ")";
  }

  const STYLE = [
    {
      selector: "node",
      style: {
        label: "data(label)", "text-wrap": "wrap", "text-max-width": 140, "font-size": 10,
        "text-valign": "bottom", "text-margin-y": 4, shape: "data(shape)",
        "background-color": "data(colour)", "border-width": 1, "border-color": "#333",
        width: 34, height: 26,
      },
    },
    { selector: "node.root", style: { "border-width": 4, "border-color": "#000" } },
    {
      selector: "node.group",
      style: {
        shape: "round-rectangle", "background-color": "#f4f4f4", "background-opacity": 0.6,
        "border-style": "dashed", "border-color": "#666", "text-valign": "top",
        "text-halign": "center", "font-size": 11, "font-weight": "bold",
      },
    },
    {
      selector: "node.more",
      style: { shape: "round-rectangle", "background-color": "#fff", "border-style": "dotted",
               "border-width": 2, width: 90, height: 30, "text-valign": "center", "font-size": 10 },
    },
    { selector: "node.retired", style: { "background-opacity": 0.3, "border-style": "dotted" } },
    { selector: "node.selected-seed", style: { "border-width": 5, "border-color": "#0072B2",
                                               "border-style": "double" } },
    {
      selector: "edge",
      style: {
        width: 1.2, "line-color": "#888", "target-arrow-color": "#888",
        "target-arrow-shape": "triangle", "curve-style": "bezier", "arrow-scale": 0.8,
      },
    },
    { selector: "edge.redundant", style: { "line-style": "dashed" } },
    { selector: "edge.none", style: { "line-style": "dotted", "line-color": "#bbb" } },
    { selector: ".faded", style: { opacity: 0.25 } },
    {
      selector: "node.DOWN",
      style: { "background-color": STATUS.DOWN.colour, "border-width": 3, "font-weight": "bold" },
    },
    {
      selector: "node.DEGRADED",
      style: { "background-color": STATUS.DEGRADED.colour, "border-width": 3,
               "border-style": "dashed" },
    },
    { selector: "node.FAILED", style: { "background-color": "#000", color: "#000",
                                        "border-width": 3, "font-weight": "bold" } },
    { selector: "node.path", style: { "border-width": 6, "border-color": "#0072B2",
                                      "underlay-color": "#56B4E9", "underlay-opacity": 0.5,
                                      "underlay-padding": 6 } },
    { selector: "edge.path", style: { width: 5, "line-color": "#0072B2",
                                      "target-arrow-color": "#0072B2", opacity: 1 } },
  ];

  /* The map state: every node and edge of the map as the API gave them, and what is drawn. */
  function SGMap(container, options) {
    if (!global.cytoscape) throw new Error("cytoscape.js is not loaded");
    if (global.cytoscapeDagre && !SGMap.registered) {
      global.cytoscape.use(global.cytoscapeDagre);
      SGMap.registered = true;
    }
    this.options = Object.assign({ cap: CAP, onNode: null, onMore: null, onInfo: null }, options);
    this.nodes = new Map(); // id -> node
    this.edges = new Map(); // "s|t|type" -> edge
    this.shown = new Set();
    this.root = null;
    this.impact = null; // {status: Map id -> status, path: Map id -> [ids], seeds: Set}
    this.cy = global.cytoscape({
      container: container, style: STYLE, minZoom: 0.05, maxZoom: 4,
      boxSelectionEnabled: false, textureOnViewport: true, hideEdgesOnViewport: true,
    });
    const self = this;
    // A tap picks the CI whose shape or label holds the point, nearest first: on small nodes an
    // edge's arrow or a group box would otherwise take the click.
    this.cy.on("tap", function (evt) {
      const p = evt.position;
      let best = null, distance = Infinity;
      self.cy.nodes().forEach((n) => {
        if (n.hasClass("group")) return;
        const b = n.boundingBox({ includeLabels: true });
        if (p.x < b.x1 || p.x > b.x2 || p.y < b.y1 || p.y > b.y2) return;
        const c = n.position(), d = (c.x - p.x) ** 2 + (c.y - p.y) ** 2;
        if (d < distance) { best = n; distance = d; }
      });
      if (!best) return;
      if (best.hasClass("more")) self.showMore(best.data("cls"));
      else if (self.options.onNode) self.options.onNode(best.id(), evt);
    });
  }

  SGMap.FAMILY = FAMILY;
  SGMap.STATUS = STATUS;

  /* Replace the map (a new root). */
  SGMap.prototype.show = function (map, root) {
    this.nodes.clear();
    this.edges.clear();
    this.shown.clear();
    this.root = root;
    this.impact = null;
    this.merge(map);
  };

  /* Add a map (expanding a node in place keeps what is there). */
  SGMap.prototype.merge = function (map) {
    for (const n of map.nodes) {
      const was = this.nodes.get(n.id);
      if (!was || n.distance < was.distance) this.nodes.set(n.id, Object.assign({}, was, n));
    }
    for (const e of map.edges) this.edges.set(e.source + "|" + e.target + "|" + e.type, e);
    const ordered = Array.from(this.nodes.values()).sort(
      (a, b) => a.distance - b.distance || (a.id < b.id ? -1 : 1));
    for (const n of ordered) {
      if (this.shown.size >= this.options.cap) break;
      this.shown.add(n.id);
    }
    for (const n of map.nodes) if (this.shown.size < this.options.cap) this.shown.add(n.id);
    this.draw();
  };

  /* Show up to 500 more CIs of a collapsed class. */
  SGMap.prototype.showMore = function (cls) {
    let added = 0;
    for (const n of this.nodes.values()) {
      if (added >= 500) break;
      if (n.class === cls && !this.shown.has(n.id)) { this.shown.add(n.id); added += 1; }
    }
    this.draw();
  };

  SGMap.prototype.counts = function () {
    return { total: this.nodes.size, shown: this.shown.size, cap: this.options.cap };
  };

  /* The cytoscape elements of what is shown: CIs, group boxes, "show more" nodes. */
  SGMap.prototype.elements = function () {
    const out = [];
    const parentOf = new Map();
    const groups = new Map();
    for (const e of this.edges.values()) {
      if (e.impact !== "redundant") continue;
      if (!this.shown.has(e.source) || !this.shown.has(e.target)) continue;
      if (parentOf.has(e.target)) continue; // a member of several groups: boxed in the first
      parentOf.set(e.target, "group:" + e.source);
      const g = groups.get(e.source) || [];
      g.push(e.target);
      groups.set(e.source, g);
    }
    for (const [owner, members] of groups) {
      const o = this.nodes.get(owner);
      const need = o.minUp || 1;
      const all = o.members || members.length;
      const drawn = all > members.length ? " (" + members.length + " on this map)" : "";
      out.push({ group: "nodes", classes: "group", data: {
        id: "group:" + owner, owner: owner,
        label: o.name + " — redundancy group: min_up " + need + " of " + all + drawn } });
    }
    const hidden = new Map(); // class -> count
    for (const n of this.nodes.values()) {
      if (!this.shown.has(n.id)) { hidden.set(n.class, (hidden.get(n.class) || 0) + 1); continue; }
      const f = family(n);
      const classes = [n.id === this.root ? "root" : "", n.status === "retired" ? "retired" : ""];
      const status = this.impact ? this.impact.status.get(n.id) : null;
      if (status) classes.push(status);
      else if (this.impact) classes.push("faded");
      if (this.impact && this.impact.seeds.has(n.id)) classes.push("FAILED");
      const shownNode = Object.assign({}, n, {
        impact: this.impact && this.impact.seeds.has(n.id) ? "FAILED" : status });
      out.push({ group: "nodes", classes: classes.filter(Boolean).join(" "), data: {
        id: n.id, label: label(shownNode), shape: FAMILY[f].shape, colour: FAMILY[f].colour,
        cls: n.class, parent: parentOf.get(n.id) } });
    }
    for (const [cls, count] of hidden) {
      out.push({ group: "nodes", classes: "more", data: {
        id: "more:" + cls, cls: cls, label: "+" + count + " " + cls + "\nshow more" } });
    }
    const seen = new Set();
    for (const e of this.edges.values()) {
      let s = e.source, t = e.target;
      if (!this.nodes.has(s) || !this.nodes.has(t)) continue;
      if (!this.shown.has(s)) s = "more:" + this.nodes.get(s).class;
      if (!this.shown.has(t)) t = "more:" + this.nodes.get(t).class;
      if (s === t) continue;
      const id = s + "|" + t + "|" + e.type;
      if (seen.has(id)) continue;
      seen.add(id);
      out.push({ group: "edges", classes: e.impact || "required", data: {
        id: "e:" + id, source: s, target: t, type: e.type } });
    }
    return out;
  };

  SGMap.prototype.draw = function () {
    const started = performance.now();
    const cy = this.cy;
    cy.resize(); // the container may have moved or changed size since the last drawing
    cy.startBatch();
    cy.elements().remove();
    cy.add(this.elements());
    cy.endBatch();
    this.layout();
    this.lastDrawMs = performance.now() - started;
    if (this.options.onInfo) this.options.onInfo(this.counts());
  };

  const DAGRE_MAX = 300; // dagre draws the nicest layers but takes seconds past a few hundred CIs

  SGMap.prototype.layout = function () {
    const count = this.cy.nodes().not(".group").length;
    if (count <= DAGRE_MAX && global.cytoscapeDagre) {
      this.cy.layout({ name: "dagre", rankDir: "TB", nodeSep: 20, rankSep: 70, edgeSep: 4,
                       animate: false, fit: true, padding: 20 }).run();
    } else {
      this.cy.layout({ name: "preset", positions: layered(this.cy), fit: true, padding: 20,
                       animate: false }).run();
    }
  };

  /* A layered layout in linear time for large maps: each CI a rank below everything that
   * depends on it (longest path, so services are on top and infrastructure at the bottom), the
   * order in a rank by the mean position of the neighbours above (two barycentre sweeps), a
   * group's members side by side, long ranks wrapped into rows. */
  function layered(cy) {
    const nodes = cy.nodes().not(".group");
    const ids = nodes.map((n) => n.id());
    const index = new Map(ids.map((id, i) => [id, i]));
    const down = ids.map(() => []), up = ids.map(() => []);
    cy.edges().forEach((e) => {
      const s = index.get(e.data("source")), t = index.get(e.data("target"));
      if (s === undefined || t === undefined || s === t) return;
      down[s].push(t);
      up[t].push(s);
    });
    // ranks: longest path from the dependents, over a depth-first order that ignores back edges
    const rank = new Array(ids.length).fill(0);
    const order = [], state = new Uint8Array(ids.length);
    for (let r = 0; r < ids.length; r += 1) {
      if (state[r]) continue;
      const stack = [[r, 0]];
      state[r] = 1;
      while (stack.length) {
        const top = stack[stack.length - 1];
        const next = down[top[0]][top[1]];
        if (next === undefined) { stack.pop(); state[top[0]] = 2; order.push(top[0]); continue; }
        top[1] += 1;
        if (!state[next]) { state[next] = 1; stack.push([next, 0]); }
      }
    }
    for (let k = order.length - 1; k >= 0; k -= 1) {
      const v = order[k];
      for (const w of down[v]) rank[w] = Math.max(rank[w], rank[v] + 1);
    }
    const rows = [];
    ids.forEach((id, i) => { (rows[rank[i]] = rows[rank[i]] || []).push(i); });
    const pos = new Float64Array(ids.length);
    const parent = ids.map((id) => cy.getElementById(id).data("parent") || "");
    for (let sweep = 0; sweep < 2; sweep += 1) {
      for (const row of rows) {
        if (!row) continue;
        const key = new Map();
        for (const v of row) {
          const above = up[v].filter((u) => rank[u] < rank[v]);
          key.set(v, above.length ? above.reduce((a, u) => a + pos[u], 0) / above.length : pos[v]);
        }
        const groupKey = new Map();
        for (const v of row) {
          const g = parent[v];
          if (g && !groupKey.has(g)) groupKey.set(g, key.get(v));
        }
        row.sort((a, b) => {
          const ka = parent[a] ? groupKey.get(parent[a]) : key.get(a);
          const kb = parent[b] ? groupKey.get(parent[b]) : key.get(b);
          return ka - kb || (parent[a] < parent[b] ? -1 : parent[a] > parent[b] ? 1 : 0) ||
            key.get(a) - key.get(b);
        });
        row.forEach((v, i) => { pos[v] = i / Math.max(1, row.length - 1); });
      }
    }
    const WIDE = 60, DX = 80, DY = 110, SUB = 55;
    const positions = {};
    let y = 0;
    for (const row of rows) {
      if (!row) continue;
      const lines = Math.ceil(row.length / WIDE);
      row.forEach((v, i) => {
        const line = Math.floor(i / WIDE), inLine = Math.min(WIDE, row.length - line * WIDE);
        positions[ids[v]] = { x: (i % WIDE - (inLine - 1) / 2) * DX, y: y + line * SUB };
      });
      y += (lines - 1) * SUB + DY;
    }
    return positions;
  }

  /* The impact overlay: {impacted: [{ci: {id}, status, path}], seeds: [ids]}. */
  SGMap.prototype.overlay = function (impact, seeds) {
    const status = new Map();
    const path = new Map();
    for (const row of impact.impacted) {
      status.set(row.ci.id, row.status);
      path.set(row.ci.id, row.path);
    }
    this.impact = { status: status, path: path, seeds: new Set(seeds) };
    this.restyle();
    let outside = 0;
    for (const id of status.keys()) if (!this.shown.has(id)) outside += 1;
    return { down: Array.from(status.values()).filter((s) => s === "DOWN").length,
             degraded: Array.from(status.values()).filter((s) => s === "DEGRADED").length,
             outside: outside };
  };

  SGMap.prototype.clearOverlay = function () {
    this.impact = null;
    this.restyle();
  };

  /* Classes only (no new layout): an overlay on 2,000 nodes stays well under a second. */
  SGMap.prototype.restyle = function () {
    const cy = this.cy;
    const impact = this.impact;
    cy.startBatch();
    cy.elements().removeClass("DOWN DEGRADED FAILED faded path");
    cy.nodes().forEach((n) => {
      if (n.hasClass("group") || n.hasClass("more")) return;
      const data = this.nodes.get(n.id());
      const seed = impact && impact.seeds.has(n.id());
      const status = impact ? impact.status.get(n.id()) : null;
      if (seed) n.addClass("FAILED");
      else if (status) n.addClass(status);
      else if (impact) n.addClass("faded");
      n.data("label", label(Object.assign({}, data, { impact: seed ? "FAILED" : status })));
    });
    cy.endBatch();
  };

  /* Highlight the explanation path of an impacted CI (seed … CI); returns the path. */
  SGMap.prototype.highlightPath = function (id) {
    const cy = this.cy;
    cy.elements().removeClass("path");
    const path = this.impact && this.impact.path.get(id);
    if (!path) return null;
    const on = new Set(path);
    for (const pid of path) cy.getElementById(pid).addClass("path");
    cy.edges().forEach((e) => {
      const s = e.data("source"), t = e.data("target");
      for (let i = 1; i < path.length; i += 1) {
        const a = path[i - 1], b = path[i];
        if ((s === a && t === b) || (s === b && t === a)) e.addClass("path");
      }
    });
    return on.size ? path : null;
  };

  SGMap.prototype.png = function () {
    return this.cy.png({ full: true, scale: 2, bg: "#ffffff", output: "blob" });
  };

  /* SVG of the view, written from the drawn positions (the one cytoscape SVG exporter is GPL). */
  SGMap.prototype.svg = function () {
    const esc = (s) => String(s).replace(/[&<>"]/g, (c) =>
      ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
    const bb = this.cy.elements().boundingBox();
    const pad = 20;
    const parts = [
      '<svg xmlns="http://www.w3.org/2000/svg" width="' + Math.ceil(bb.w + 2 * pad) +
      '" height="' + Math.ceil(bb.h + 2 * pad) + '" viewBox="' + (bb.x1 - pad) + " " +
      (bb.y1 - pad) + " " + (bb.w + 2 * pad) + " " + (bb.h + 2 * pad) + '" font-family="sans-serif">',
      '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" ' +
      'markerHeight="6" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#888"/>' +
      "</marker></defs>",
    ];
    this.cy.nodes(".group").forEach((n) => {
      const b = n.boundingBox({ includeLabels: false });
      parts.push('<rect x="' + b.x1 + '" y="' + b.y1 + '" width="' + b.w + '" height="' + b.h +
                 '" rx="8" fill="#f4f4f4" stroke="#666" stroke-dasharray="4 3"/>');
      parts.push('<text x="' + (b.x1 + b.w / 2) + '" y="' + (b.y1 - 4) + '" font-size="11" ' +
                 'text-anchor="middle">' + esc(n.data("label")) + "</text>");
    });
    this.cy.edges().forEach((e) => {
      const s = e.sourceEndpoint(), t = e.targetEndpoint();
      const dash = e.hasClass("redundant") ? ' stroke-dasharray="5 3"' : "";
      const colour = e.hasClass("path") ? "#0072B2" : "#888";
      parts.push('<line x1="' + s.x + '" y1="' + s.y + '" x2="' + t.x + '" y2="' + t.y +
                 '" stroke="' + colour + '"' + dash + ' marker-end="url(#arrow)"/>');
    });
    this.cy.nodes().not(".group").forEach((n) => {
      const p = n.position(), w = n.width(), h = n.height();
      const fill = n.style("background-color");
      const opacity = n.hasClass("faded") ? 0.25 : 1;
      parts.push('<rect x="' + (p.x - w / 2) + '" y="' + (p.y - h / 2) + '" width="' + w +
                 '" height="' + h + '" rx="4" fill="' + fill + '" stroke="#333" opacity="' +
                 opacity + '"/>');
      const lines = String(n.data("label")).split("\n");
      lines.forEach((line, i) => {
        parts.push('<text x="' + p.x + '" y="' + (p.y + h / 2 + 11 + i * 11) +
                   '" font-size="9" text-anchor="middle" opacity="' + opacity + '">' +
                   esc(line) + "</text>");
      });
    });
    parts.push("</svg>");
    return parts.join("\n");
  };

  /* The whole map (not only what is drawn) as Cytoscape JSON. */
  SGMap.prototype.cyjs = function () {
    return {
      data: { root: this.root },
      elements: {
        nodes: Array.from(this.nodes.values()).map((n) => ({ data: Object.assign({}, n) })),
        edges: Array.from(this.edges.values()).map((e) => ({
          data: Object.assign({ id: e.source + "|" + e.target + "|" + e.type }, e) })),
      },
    };
  };

  /* The legend: one line per family in the map, and the impact statuses. */
  SGMap.prototype.legend = function () {
    const present = new Map();
    for (const n of this.nodes.values()) {
      const f = family(n);
      const set = present.get(f) || new Set();
      set.add(n.class);
      present.set(f, set);
    }
    return Array.from(present.entries()).map(([f, classes]) => ({
      family: f, colour: FAMILY[f].colour, shape: FAMILY[f].shape, label: FAMILY[f].label,
      classes: Array.from(classes).sort(),
    }));
  };

  global.SGMap = SGMap;
})(typeof window !== "undefined" ? window : this);
