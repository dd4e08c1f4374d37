// The collections the caller may read (GET /collections): which ones a question is asked in (all by default;
// the request names them only when the person narrowed the choice) and which ones an upload may go to (the
// writable ones). A server without GET /collections (404) has one corpus, and the page behaves as before.

import { $, el, plural } from "./dom.js";
import { HttpError, api } from "./http.js";

const ui = {
  scope: $("scope"),
  toggle: $("scope-toggle"),
  panel: $("scope-panel"),
  options: $("scope-options"),
};

const state = {
  list: [], // [{name, documents, writable}] as the server lists them; [] when it has no collections
  excluded: new Set(), // names the person unticked; a collection new to the page is asked by default
  loading: null,
  listeners: [],
};

/** The names to send with /ask, or null for "every collection I may read" (the server's default). */
export function askedCollections() {
  const asked = state.list.map((c) => c.name).filter((name) => !state.excluded.has(name));
  return asked.length === state.list.length ? null : asked;
}

/** The collections an upload may go to; null when the server has no collections (upload as before). */
export function writableCollections() {
  return state.list.length ? state.list.filter((c) => c.writable) : null;
}

/** How many collections the caller reads (0 when the server has none): a citation names its own when > 1. */
export const collectionCount = () => state.list.length;

/** ``listener()`` runs after each load (the list, or what is writable, may have changed). */
export function onCollections(listener) {
  state.listeners.push(listener);
}

function summary() {
  const asked = askedCollections();
  if (!asked) return `Ask in: all ${plural(state.list.length, "collection", "collections")}`;
  return `Ask in: ${asked.join(", ")}`;
}

function option(collection) {
  const box = el("input", { type: "checkbox", name: "collection", value: collection.name });
  box.checked = !state.excluded.has(collection.name);
  box.addEventListener("change", () => {
    if (box.checked) state.excluded.delete(collection.name);
    else state.excluded.add(collection.name);
    if (askedCollections()?.length === 0) {
      // a question is asked somewhere: the last ticked collection stays ticked
      box.checked = true;
      state.excluded.delete(collection.name);
    }
    ui.toggle.textContent = summary();
  });
  return el(
    "li",
    {},
    el(
      "label",
      { className: "scope-option" },
      box,
      el("span", { className: "scope-name", text: collection.name }),
      el("span", { className: "scope-count", text: ` (${plural(collection.documents, "document", "documents")})` }),
    ),
  );
}

function render() {
  // one collection leaves nothing to choose: the picker shows from two on
  ui.scope.hidden = state.list.length < 2;
  ui.options.replaceChildren(...state.list.map(option));
  ui.toggle.textContent = summary();
}

/** Read GET /collections again (at load, after a new key, after the corpus changed). */
export function loadCollections() {
  if (state.loading) return state.loading;
  state.loading = (async () => {
    try {
      const body = await api("/collections", { headers: { Accept: "application/json" } });
      state.list = Array.isArray(body?.collections) ? body.collections : [];
    } catch (err) {
      if (!(err instanceof HttpError) || err.status !== 404) {
        console.warn("GET /collections:", err.message); // the page still asks every collection
      }
      state.list = [];
    } finally {
      state.loading = null;
    }
    const names = new Set(state.list.map((c) => c.name));
    for (const name of state.excluded) if (!names.has(name)) state.excluded.delete(name);
    render();
    for (const listener of state.listeners) listener();
  })();
  return state.loading;
}

function setOpen(open) {
  ui.panel.hidden = !open;
  ui.toggle.setAttribute("aria-expanded", String(open));
}

ui.toggle.addEventListener("click", () => setOpen(ui.panel.hidden));
ui.panel.addEventListener("keydown", (event) => {
  if (event.key === "Escape") {
    event.preventDefault();
    setOpen(false);
    ui.toggle.focus();
  }
});
window.addEventListener("qa:key", () => loadCollections());
