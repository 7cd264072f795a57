// hookmq dashboard: live figures over a WebSocket, charts drawn on <canvas>, tables from the JSON API.
// No external libraries: the page must work offline and under a strict Content-Security-Policy.
"use strict";

(() => {
  const PAGE_SIZE = 25;
  const CHART_WINDOW_SECONDS = 300;
  const state = {
    csrf: null,
    interval: 1,
    samples: [],           // {t, figures, rates}, oldest first, trimmed to the ring buffer's capacity
    capacity: 600,
    lastCounts: "",
    tables: {
      clients: { offset: 0, total: 0 },
      subscriptions: { offset: 0, total: 0 },
      retained: { offset: 0, total: 0 },
    },
  };

  const $ = (id) => document.getElementById(id);

  // ---- API ------------------------------------------------------------------------------------

  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    if (method !== "GET" && state.csrf) headers["X-CSRF-Token"] = state.csrf;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, {
      method, headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 401) { window.location.assign("/login"); throw new Error("unauthorized"); }
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.detail || response.statusText);
    return data;
  }

  // ---- formatting -------------------------------------------------------------------------------

  const numberFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
  const fmt = (value) => (typeof value === "number" ? numberFormat.format(value) : value ?? "–");

  function fmtBytes(value) {
    if (typeof value !== "number") return "–";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (value >= 1024 && i < units.length - 1) { value /= 1024; i += 1; }
    return `${numberFormat.format(value)} ${units[i]}`;
  }

  function fmtDuration(seconds) {
    if (typeof seconds !== "number") return "–";
    seconds = Math.floor(seconds);
    const d = Math.floor(seconds / 86400), h = Math.floor(seconds % 86400 / 3600);
    const m = Math.floor(seconds % 3600 / 60), s = seconds % 60;
    if (d) return `${d}d ${h}h`;
    if (h) return `${h}h ${m}m`;
    if (m) return `${m}m ${s}s`;
    return `${s}s`;
  }

  function setText(id, value) { const el = $(id); if (el) el.textContent = value; }

  // ---- figures ------------------------------------------------------------------------------------

  function showFigures(sample) {
    const f = sample.figures, r = sample.rates;
    setText("stat-clients-connected", fmt(f.clients_connected));
    setText("stat-clients-maximum", fmt(f.clients_maximum));
    setText("stat-clients-total", fmt(f.clients_total));
    setText("stat-messages-in", fmt(r.messages_received_per_second ?? 0));
    setText("stat-messages-out", fmt(r.messages_sent_per_second ?? 0));
    setText("stat-messages-received", fmt(f.messages_received));
    setText("stat-messages-sent", fmt(f.messages_sent));
    setText("stat-subscriptions", fmt(f.subscriptions));
    setText("stat-retained", fmt(f.retained));
    setText("stat-inflight", fmt(f.inflight));
    setText("stat-dropped", fmt(f.messages_dropped ?? f.dropped));
    setText("stat-bytes-in", `${fmtBytes(r.bytes_received_per_second ?? 0)}/s in`);
    setText("stat-bytes-out", `${fmtBytes(r.bytes_sent_per_second ?? 0)}/s`);
    setText("broker-version", f.version ? `v${f.version}` : "");
    setText("broker-uptime", fmtDuration(f.uptime));
  }

  // ---- charts -----------------------------------------------------------------------------------

  function niceStep(max, ticks) {
    const raw = max / ticks;
    const power = Math.pow(10, Math.floor(Math.log10(raw)));
    const unit = raw / power;
    return (unit <= 1 ? 1 : unit <= 2 ? 2 : unit <= 5 ? 5 : 10) * power;
  }

  function cssColor(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#888";
  }

  // series: [{label, color, values: [[t, v], ...]}]; draws the last CHART_WINDOW_SECONDS up to `now`.
  function drawChart(canvas, series, now) {
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth || canvas.width, height = canvas.clientHeight || canvas.height;
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    const pad = { left: 48, right: 12, top: 22, bottom: 22 };
    const plotW = width - pad.left - pad.right, plotH = height - pad.top - pad.bottom;
    const start = now - CHART_WINDOW_SECONDS;
    let max = 0;
    for (const s of series) for (const [t, v] of s.values) if (t >= start && v > max) max = v;
    const step = niceStep(Math.max(max, 1), 4);
    const top = Math.max(step, Math.ceil(max / step) * step);
    const x = (t) => pad.left + ((t - start) / CHART_WINDOW_SECONDS) * plotW;
    const y = (v) => pad.top + plotH - (v / top) * plotH;

    ctx.font = "11px system-ui, sans-serif";
    ctx.lineWidth = 1;
    ctx.strokeStyle = cssColor("--line");
    ctx.fillStyle = cssColor("--muted");
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (let v = 0; v <= top + step / 2; v += step) {
      ctx.beginPath(); ctx.moveTo(pad.left, y(v) + 0.5); ctx.lineTo(pad.left + plotW, y(v) + 0.5); ctx.stroke();
      ctx.fillText(numberFormat.format(v), pad.left - 6, y(v));
    }
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    for (let ago = CHART_WINDOW_SECONDS; ago >= 0; ago -= 60) {
      ctx.fillText(ago ? `-${ago / 60}m` : "now", x(now - ago), pad.top + plotH + 6);
    }
    let legendX = pad.left;
    for (const s of series) {
      ctx.strokeStyle = s.color;
      ctx.lineWidth = 2;
      ctx.lineJoin = "round";
      ctx.beginPath();
      let started = false;
      for (const [t, v] of s.values) {
        if (t < start) continue;
        if (started) ctx.lineTo(x(t), y(v)); else { ctx.moveTo(x(t), y(v)); started = true; }
      }
      ctx.stroke();
      ctx.fillStyle = s.color;
      ctx.fillRect(legendX, 6, 10, 10);
      ctx.fillStyle = cssColor("--ink");
      ctx.textAlign = "left";
      ctx.textBaseline = "top";
      ctx.fillText(s.label, legendX + 14, 5);
      legendX += ctx.measureText(s.label).width + 34;
    }
  }

  function seriesOf(pick) {
    return state.samples.map((s) => [s.t, pick(s) ?? 0]);
  }

  function drawCharts() {
    const now = state.samples.length ? state.samples[state.samples.length - 1].t : Date.now() / 1000;
    drawChart($("chart-messages"), [
      { label: "received", color: cssColor("--accent"), values: seriesOf((s) => s.rates.messages_received_per_second) },
      { label: "sent", color: cssColor("--accent-2"), values: seriesOf((s) => s.rates.messages_sent_per_second) },
    ], now);
    drawChart($("chart-clients"), [
      { label: "connected", color: cssColor("--good"), values: seriesOf((s) => s.figures.clients_connected) },
    ], now);
  }

  // ---- tables -------------------------------------------------------------------------------------

  function cell(row, text, className) {
    const td = document.createElement("td");
    td.textContent = text ?? "–";
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }

  function actionCell(row, label, onClick) {
    const td = document.createElement("td");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "danger";
    button.textContent = label;
    button.addEventListener("click", onClick);
    td.appendChild(button);
    row.appendChild(td);
  }

  function fill(tbodyId, items, columns, render) {
    const body = $(tbodyId);
    body.replaceChildren();
    if (!items.length) {
      const row = document.createElement("tr");
      const td = cell(row, "nothing here", "empty-row");
      td.colSpan = columns;
      body.appendChild(row);
      return;
    }
    for (const item of items) {
      const row = document.createElement("tr");
      render(row, item);
      body.appendChild(row);
    }
  }

  function renderClient(row, c) {
    cell(row, c.client_id, "wrap");
    cell(row, c.username);
    cell(row, c.remote_address);
    cell(row, c.listener);
    cell(row, c.protocol);
    const stateCell = cell(row, c.connected ? "online" : "offline");
    const dot = document.createElement("span");
    dot.className = `dot ${c.connected ? "on" : "off"}`;
    stateCell.prepend(dot);
    cell(row, c.keep_alive != null ? `${c.keep_alive}s` : "–");
    cell(row, fmt(c.subscriptions));
    cell(row, fmt(c.inflight));
    cell(row, fmt(c.queued));
    if (c.connected) {
      // Names travel in the query string, never concatenated into the path: a browser resolves
      // "." and ".." path segments (even percent-encoded) before sending.
      actionCell(row, "Disconnect", () => mutate("DELETE", `/api/client?client_id=${encodeURIComponent(c.client_id)}`));
    } else {
      cell(row, "");
    }
  }

  function renderSubscription(row, s) {
    cell(row, s.topic_filter, "wrap");
    cell(row, s.client_id, "wrap");
    cell(row, String(s.qos));
    cell(row, s.share_group);
    const flags = [];
    if (s.no_local) flags.push("no-local");
    if (s.retain_as_published) flags.push("retain-as-published");
    if (s.retain_handling) flags.push(`rh=${s.retain_handling}`);
    if (s.identifier != null) flags.push(`id=${s.identifier}`);
    cell(row, flags.join(" "));
  }

  function renderRetained(row, m) {
    cell(row, m.topic, "wrap");
    cell(row, String(m.qos));
    const text = m.payload_encoding === "base64" ? `(binary) ${m.payload}` : m.payload;
    cell(row, text.length > 120 ? `${text.slice(0, 120)}…` : text, "wrap");
    cell(row, fmtBytes(m.size));
    actionCell(row, "Delete", () => mutate("DELETE", `/api/retained?topic=${encodeURIComponent(m.topic)}`));
  }

  const TABLES = {
    clients: { columns: 11, render: renderClient,
      query: () => ({ q: $("clients-q").value, protocol: $("clients-protocol").value }) },
    subscriptions: { columns: 5, render: renderSubscription, query: () => ({ q: $("subscriptions-q").value }) },
    retained: { columns: 5, render: renderRetained,
      query: () => ({ q: $("retained-q").value, system: $("retained-system").checked ? "true" : "" }) },
  };

  async function loadTable(name) {
    const table = state.tables[name];
    const params = new URLSearchParams({ offset: String(table.offset), limit: String(PAGE_SIZE) });
    for (const [key, value] of Object.entries(TABLES[name].query())) if (value) params.set(key, value);
    try {
      const page = await api("GET", `/api/${name}?${params}`);
      if (page.total > 0 && table.offset >= page.total) {
        table.offset = Math.max(0, Math.floor((page.total - 1) / PAGE_SIZE) * PAGE_SIZE);
        return loadTable(name);
      }
      table.total = page.total;
      fill(`${name}-body`, page.items, TABLES[name].columns, TABLES[name].render);
      setText(`${name}-total`, String(page.total));
      const pager = document.querySelector(`.pager[data-table="${name}"]`);
      const last = Math.min(page.total, table.offset + page.items.length);
      pager.querySelector(".pager-text").textContent =
        page.total ? `${table.offset + 1}–${last} of ${page.total}` : "";
      pager.querySelector('[data-step="-1"]').disabled = table.offset === 0;
      pager.querySelector('[data-step="1"]').disabled = last >= page.total;
    } catch (error) {
      console.warn(`loading ${name} failed`, error);
    }
  }

  function loadTables() { for (const name of Object.keys(TABLES)) loadTable(name); }

  async function mutate(method, path, body) {
    try { await api(method, path, body); } catch (error) { window.alert(error.message); }
    loadTables();
  }

  function debounce(fn, ms) {
    let timer = null;
    return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
  }

  function wireTables() {
    for (const name of Object.keys(TABLES)) {
      const reload = debounce(() => { state.tables[name].offset = 0; loadTable(name); }, 200);
      $(`${name}-q`).addEventListener("input", reload);
      const pager = document.querySelector(`.pager[data-table="${name}"]`);
      pager.addEventListener("click", (event) => {
        const step = Number(event.target.dataset?.step || 0);
        if (!step) return;
        state.tables[name].offset = Math.max(0, state.tables[name].offset + step * PAGE_SIZE);
        loadTable(name);
      });
    }
    $("clients-protocol").addEventListener("change", () => { state.tables.clients.offset = 0; loadTable("clients"); });
    $("retained-system").addEventListener("change", () => { state.tables.retained.offset = 0; loadTable("retained"); });
  }

  // Refresh the tables when the figures behind them change, and at least every 10 samples.
  let samplesSinceRefresh = 0;
  function maybeRefreshTables(sample) {
    const f = sample.figures;
    const counts = [f.clients_connected, f.clients_total, f.subscriptions, f.retained].join("/");
    samplesSinceRefresh += 1;
    if (counts !== state.lastCounts || samplesSinceRefresh >= 10) {
      state.lastCounts = counts;
      samplesSinceRefresh = 0;
      loadTables();
    }
  }

  // ---- publish form -------------------------------------------------------------------------------

  function wirePublish() {
    const form = $("publish-form");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const data = new FormData(form);
      const message = {
        topic: String(data.get("topic") || ""), payload: String(data.get("payload") || ""),
        qos: Number(data.get("qos") || 0), retain: data.get("retain") === "on",
      };
      const result = $("publish-result");
      try {
        const answer = await api("POST", "/api/publish", message);
        result.className = "muted";
        result.textContent = `Published to ${answer.topic}: ${answer.delivered} subscriber(s).`;
        if (message.retain) loadTable("retained");
      } catch (error) {
        result.className = "error";
        result.textContent = error.message;
      }
    });
  }

  // ---- cluster ------------------------------------------------------------------------------------

  // A link's round trip: loopback and LAN links take well under a millisecond, which one
  // decimal would show as "0 ms"; below 1 ms two significant digits are kept.
  const fmtMs = (seconds) => {
    const ms = seconds * 1000;
    return ms > 0 && ms < 1 ? `${ms.toPrecision(2)} ms` : `${numberFormat.format(ms)} ms`;
  };
  const fmtTime = (t) => (typeof t === "number" ? new Date(t * 1000).toLocaleTimeString() : "–");

  function renderMember(row, m) {
    const link = m.link || null;
    const figures = m.figures || null;
    cell(row, m.local ? `${m.name} (this node)` : m.name);
    cell(row, m.state, `state-${m.state}`);
    cell(row, fmt(m.incarnation));
    cell(row, m.address);
    cell(row, fmtTime(m.joined_at));
    cell(row, m.local ? "–" : link && link.up ? "up" : "down");
    cell(row, link ? `${fmt(link.queue_frames)} (${fmtBytes(link.queue_bytes)})` : "–");
    cell(row, m.local ? "–" : `${fmt(m.messages_forwarded)} / ${fmt(m.messages_received)}`);
    cell(row, link ? `${fmtBytes(link.bytes_sent)} / ${fmtBytes(link.bytes_received)}` : "–");
    cell(row, link && typeof link.rtt_seconds === "number" ? fmtMs(link.rtt_seconds) : "–");
    cell(row, m.local ? "–" : fmt(m.routes));
    cell(row, figures && figures.fresh ? fmt(figures.clients) : "–");
    cell(row, figures && figures.fresh
      ? `${fmt(figures.messages_in_per_second)} / ${fmt(figures.messages_out_per_second)}` : "–");
  }

  async function loadCluster() {
    let view;
    try { view = await api("GET", "/api/cluster"); } catch (error) { return; }
    $("cluster-empty").hidden = Boolean(view.enabled);
    $("cluster-view").hidden = !view.enabled;
    if (!view.enabled) return;
    const s = view.members_by_state || {};
    const t = view.totals || {};
    setText("cluster-summary",
      `${s.alive || 0} alive · ${s.suspect || 0} suspect · ${s.failed || 0} failed · ${s.left || 0} left — ` +
      `cluster totals over ${fmt(t.nodes_reporting)} live nodes: ${fmt(t.clients)} clients, ` +
      `${fmt(t.subscriptions)} subscriptions, ${fmt(t.messages_in_per_second)} msg/s in, ` +
      `${fmt(t.messages_out_per_second)} msg/s out`);
    fill("cluster-body", view.members, 13, renderMember);
    loadClusterClients();
  }

  function renderClusterClient(row, c) {
    cell(row, c.client_id, "wrap");
    cell(row, c.node);
    cell(row, c.username);
    cell(row, c.remote_address);
    cell(row, c.protocol);
    cell(row, fmt(c.subscriptions));
    actionCell(row, "Disconnect", async () => {
      const query = `node=${encodeURIComponent(c.node)}&client_id=${encodeURIComponent(c.client_id)}`;
      try { await api("DELETE", `/api/cluster/client?${query}`); } catch (error) { window.alert(error.message); }
      loadTables();
      loadClusterClients();
    });
  }

  async function loadClusterClients() {
    let found;
    try { found = await api("GET", "/api/cluster/clients?limit=100"); } catch (error) { return; }
    if (!found.enabled) return;
    const failed = Object.entries(found.nodes || {}).filter(([, v]) => v.error).map(([n, v]) => `${n}: ${v.error}`);
    setText("cluster-clients-note", `${fmt(found.total)} connected` +
      (found.total > found.items.length ? ` (first ${found.items.length} shown)` : "") +
      (failed.length ? ` — not answering: ${failed.join("; ")}` : ""));
    fill("cluster-clients-body", found.items, 7, renderClusterClient);
  }

  function describeClusterEvent(frame) {
    const ids = (frame.client_ids || []).join(", ");
    const more = frame.count > (frame.client_ids || []).length ? ` and ${frame.count - frame.client_ids.length} more` : "";
    if (frame.event === "takeover") return `session ${ids} taken over from node ${frame.node}`;
    if (frame.event === "handed_over") return `session ${ids} handed over to node ${frame.node}`;
    if (frame.event === "adoption") return `${frame.count} session(s) of node ${frame.node} adopted here: ${ids}${more}`;
    return `${frame.node} ${frame.event} (${frame.address})`;
  }

  function addClusterEvent(frame) {
    const list = $("cluster-events");
    const item = document.createElement("li");
    item.className = `event-${frame.event}`;
    item.textContent = `${fmtTime(frame.t)} ${describeClusterEvent(frame)}`;
    list.prepend(item);
    while (list.children.length > 50) list.lastChild.remove();
    loadCluster();
  }

  let clusterLoadedAt = 0;
  function maybeRefreshCluster() {
    const now = Date.now();
    if (now - clusterLoadedAt >= 2000) { clusterLoadedAt = now; loadCluster(); }
  }

  // ---- live feed ------------------------------------------------------------------------------------

  function setLive(on, text) {
    const el = $("live-status");
    el.textContent = text;
    el.className = `status ${on ? "status-on" : "status-off"}`;
  }

  function addSample(sample) {
    state.samples.push(sample);
    if (state.samples.length > state.capacity) state.samples.splice(0, state.samples.length - state.capacity);
    showFigures(sample);
    maybeRefreshTables(sample);
  }

  function onFrame(frame) {
    if (frame.type === "history") {
      state.interval = frame.interval;
      state.capacity = frame.capacity || state.capacity;
      state.samples = [];
      setText("sample-interval", String(frame.interval));
      for (const sample of frame.samples) addSample(sample);
    } else if (frame.type === "sample") {
      addSample(frame);
      maybeRefreshCluster();
    } else if (frame.type === "cluster") {
      addClusterEvent(frame);
      return;
    }
    drawCharts();
  }

  let retryDelay = 1000;
  function connect() {
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${window.location.host}/api/live`);
    socket.addEventListener("open", () => { retryDelay = 1000; setLive(true, "live"); });
    socket.addEventListener("message", (event) => {
      try { onFrame(JSON.parse(event.data)); } catch (error) { console.warn("bad frame", error); }
    });
    socket.addEventListener("close", () => {
      setLive(false, "reconnecting…");
      setTimeout(connect, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 15000);
    });
  }

  // ---- start ------------------------------------------------------------------------------------------

  async function start() {
    const session = await api("GET", "/api/session");
    state.csrf = session.csrf_token;
    if (session.auth === "cookie") {
      const logout = $("logout");
      logout.hidden = false;
      logout.addEventListener("click", async () => {
        await api("POST", "/logout").catch(() => null);
        window.location.assign("/login");
      });
    }
    wireTables();
    wirePublish();
    loadTables();
    loadCluster();
    connect();
    window.addEventListener("resize", debounce(drawCharts, 100));
  }

  document.addEventListener("DOMContentLoaded", () => {
    start().catch((error) => setLive(false, `error: ${error.message}`));
  });
})();
