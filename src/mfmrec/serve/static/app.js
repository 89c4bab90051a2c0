// mfmrec web page: plain JavaScript over the JSON API (no build step).
// Every piece of data goes into the page through textContent, never as HTML.
"use strict";

const state = { info: null, user: null, query: "", offset: 0, pageSize: 50, timer: null };
const $ = (id) => document.getElementById(id);

function el(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "text") node.textContent = value;
    else if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

async function api(path, options) {
  const response = await fetch(path, options);
  let body = null;
  try { body = await response.json(); } catch (_) { /* not JSON */ }
  if (!response.ok) {
    const detail = body && body.detail;
    const text = typeof detail === "string" ? detail
      : Array.isArray(detail) ? detail.map((d) => `${(d.loc || []).join(".")}: ${d.msg}`).join("; ")
      : `HTTP ${response.status}`;
    throw new Error(text);
  }
  return body;
}

// A stable, soft colour per title for photo-less cards.
function hue(text) {
  let h = 0;
  for (const c of text || "") h = (h * 31 + c.charCodeAt(0)) % 360;
  return h;
}

function photo(item, rank) {
  const box = el("div", { class: "photo" });
  if (item.image_url) {
    box.append(el("img", { src: item.image_url, alt: item.title || item.id, loading: "lazy" }));
  } else {
    const ph = el("div", { class: "placeholder", text: item.title || item.id });
    ph.style.background = `linear-gradient(135deg, hsl(${hue(item.title)} 35% 55%), hsl(${(hue(item.title) + 40) % 360} 40% 42%))`;
    box.append(ph);
  }
  if (rank) box.append(el("span", { class: "rank", text: `#${rank}` }));
  return box;
}

function card(item, sub, onclick, rank) {
  const tag = onclick ? "button" : "div";
  const props = { class: "card", title: item.title || item.id };
  if (onclick) { props.onclick = onclick; props.type = "button"; }
  return el(tag, props, [
    photo(item, rank),
    el("div", { class: "meta" }, [
      el("div", { class: "title", text: item.title || "(untitled)" }),
      el("div", { class: "sub", text: sub }),
    ]),
  ]);
}

function skeletons(n) {
  return Array.from({ length: n }, () => el("div", { class: "card skeleton" }));
}

function errorBox(message) {
  return el("div", { class: "error", role: "alert", text: message });
}

// ---- users -------------------------------------------------------------------------
async function loadUsers(append = false) {
  const list = $("users");
  if (!append) { state.offset = 0; list.replaceChildren(el("li", { class: "count", text: "Loading users…" })); }
  const q = encodeURIComponent(state.query);
  try {
    const page = await api(`/api/users?q=${q}&limit=${state.pageSize}&offset=${state.offset}`);
    if (!append) list.replaceChildren();
    for (const user of page.users) {
      const button = el("button", { type: "button", "data-user": user.id,
        onclick: () => selectUser(user.id) }, [
        el("span", { text: user.name || user.id }),
        el("span", { class: "uid", text: `${user.history_length} items` }),
      ]);
      if (state.user === user.id) button.setAttribute("aria-current", "true");
      list.append(el("li", {}, [button]));
    }
    state.offset += page.users.length;
    $("user-count").textContent = `${page.total} user${page.total === 1 ? "" : "s"}`;
    $("more").hidden = state.offset >= page.total;
  } catch (err) {
    list.replaceChildren(el("li", {}, [errorBox(`Could not load users: ${err.message}`)]));
  }
}

async function selectUser(id) {
  state.user = id;
  for (const b of document.querySelectorAll("[data-user]")) {
    b.setAttribute("aria-current", b.dataset.user === id ? "true" : "false");
  }
  $("welcome").hidden = true;
  $("user-view").hidden = false;
  $("user-title").textContent = id;
  $("user-sub").textContent = "";
  const encoded = encodeURIComponent(id);
  const history = $("history");
  history.replaceChildren(...skeletons(6));
  try {
    const data = await api(`/api/users/${encoded}/history`);
    $("user-title").textContent = data.user.name || data.user.id;
    $("user-sub").textContent = `user ${data.user.id}`;
    $("history-count").textContent = `· ${data.items.length} items, oldest first`;
    history.replaceChildren(...data.items.map((item, i) => card(item, `#${i + 1} in history`)));
  } catch (err) {
    history.replaceChildren(errorBox(`Could not load the history: ${err.message}`));
  }
  loadRecommendations();
}

// ---- recommendations ---------------------------------------------------------------
function modelPanel(model) {
  const kind = model.produces === "list" ? "own ranked list" : "scores";
  return el("section", { class: "model", "data-model": model.key }, [
    el("div", { class: "model-head" }, [
      el("div", {}, [el("strong", { text: model.key }),
        el("span", { class: "tag", text: model.name }),
        model.explains ? el("span", { class: "tag", text: "explains" }) : null]),
      el("span", { class: "muted small", text: kind }),
    ]),
    el("div", { class: "grid" }, skeletons(4)),
  ]);
}

async function loadRecommendations() {
  const models = $("models");
  const recommenders = state.info.models.filter((m) => m.tasks.includes("sequential"));
  if (!recommenders.length) {
    models.replaceChildren(el("p", { class: "note", text: "No loaded model recommends items." }));
    return;
  }
  models.replaceChildren(...recommenders.map(modelPanel));
  const k = $("k").value;
  const user = state.user;
  await Promise.all(recommenders.map(async (model) => {
    const grid = models.querySelector(`[data-model="${CSS.escape(model.key)}"] .grid`);
    try {
      const data = await api(`/api/users/${encodeURIComponent(user)}/recommendations?k=${k}&model=${encodeURIComponent(model.key)}`);
      if (state.user !== user) return;  // the user changed meanwhile
      const recs = data.results[0].recommendations;
      grid.replaceChildren(...recs.map((r) => card(r.item,
        r.score === null ? `rank ${r.rank}` : `score ${r.score.toFixed(3)}`,
        () => explain(model, r.item), r.rank)));
      if (!recs.length) grid.replaceChildren(el("p", { class: "note", text: "No recommendations." }));
    } catch (err) {
      grid.replaceChildren(errorBox(`${model.key}: ${err.message}`));
    }
  }));
}

// ---- explanations ------------------------------------------------------------------
async function explain(model, item) {
  $("drawer").hidden = false;
  $("drawer-title").textContent = item.title || item.id;
  $("drawer-photo").replaceChildren(photo(item));
  const box = $("explanations");
  if (!model.explains) {
    box.replaceChildren(el("p", { class: "note",
      text: `${model.key} (${model.name}) does not generate explanations; models that do (such as VIP5) show one here.` }));
    return;
  }
  box.replaceChildren(el("p", { class: "muted", text: "Generating an explanation…" }));
  try {
    const data = await api(`/api/users/${encodeURIComponent(state.user)}/explanations/${encodeURIComponent(item.id)}?model=${encodeURIComponent(model.key)}`);
    box.replaceChildren(...data.explanations.map((e) => el("div", { class: "explanation" }, [
      el("div", { class: "by", text: `${e.model} · generated` }),
      e.text ? el("q", { text: e.text })
        : el("span", { class: "note", text: "The model generated an empty explanation." }),
    ])));
    if (data.note) box.append(el("p", { class: "note", text: data.note }));
  } catch (err) {
    box.replaceChildren(errorBox(`Could not explain: ${err.message}`));
  }
}

function closeDrawer() { $("drawer").hidden = true; }

// ---- start -------------------------------------------------------------------------
async function start() {
  $("drawer-close").addEventListener("click", closeDrawer);
  $("drawer").addEventListener("click", (e) => { if (e.target === $("drawer")) closeDrawer(); });
  document.addEventListener("keydown", (e) => { if (e.key === "Escape") closeDrawer(); });
  $("more").addEventListener("click", () => loadUsers(true));
  $("k").addEventListener("change", () => { if (state.user) loadRecommendations(); });
  $("search").addEventListener("input", (e) => {
    clearTimeout(state.timer);
    state.timer = setTimeout(() => { state.query = e.target.value; loadUsers(); }, 200);
  });
  try {
    state.info = await api("/api/info");
  } catch (err) {
    $("dataset").replaceChildren(errorBox(`The service is not answering: ${err.message}`));
    return;
  }
  const info = state.info;
  $("dataset").textContent = `${info.dataset} · ${info.num_users} users · ${info.num_items} items · ${info.models.length} model${info.models.length === 1 ? "" : "s"}`;
  $("simulated").hidden = !info.simulated;
  await loadUsers();
}

start();
