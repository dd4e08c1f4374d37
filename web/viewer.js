// The document viewer: the full extracted text with the cited span marked, opened from a citation, from the
// documents panel, or from a deep link (#doc=ID&start=N&end=M, as Slack's replies link to it).
//
// Documents are cached, but a cached text is trusted only while it still holds the citation it is opened for:
// after a re-index the same id can hold another text, and new offsets on the old text would mark the wrong
// span. The cache is also dropped whenever the corpus changes (clearDocuments, called by the page).

import { $, el } from "./dom.js";
import { api, errorText } from "./http.js";
import { slicePoints, unitIndexes } from "./offsets.js";

const ui = {
  viewer: $("viewer"),
  title: $("viewer-title"),
  id: $("viewer-id"),
  body: $("viewer-body"),
  close: $("viewer-close"),
};

const cache = new Map(); // id -> Promise<{id, title, text, pages}>
let openings = 0;
let fromLink = false; // opened by a deep link: closing clears the address's #doc=…

export const encodeDocId = (id) => id.split("/").map(encodeURIComponent).join("/");

/** Forget every cached document (the index changed: a re-index, an upload, a deletion). */
export function clearDocuments() {
  cache.clear();
}

export function forgetDocument(id) {
  cache.delete(id);
}

function fetchDocument(id, fresh = false) {
  if (fresh || !cache.has(id)) {
    const request = api(`/documents/${encodeDocId(id)}`);
    request.catch(() => cache.delete(id)); // a failure is not cached
    cache.set(id, request);
  }
  return cache.get(id);
}

/** Whether this text is the one the citation was cut from (its passage sits at its offsets). */
const holds = (doc, target) =>
  typeof target.text !== "string" || slicePoints(doc.text, target.start, target.end) === target.text;

/**
 * Full text as text nodes; the cited passage wrapped in a span and its answering sentence in a <mark>.
 * ``target`` is {start, end, highlight: {start, end}} in code points; without a span the text is shown unmarked.
 */
function documentNodes(text, target) {
  if (!target || typeof target.start !== "number") return { nodes: [text], mark: null };
  const highlight = target.highlight || target;
  const [start, to, markFrom, markTo] = unitIndexes(text, [target.start, target.end, highlight.start, highlight.end]);
  const end = Math.max(start, to);
  const hs = Math.min(Math.max(markFrom, start), end);
  const he = Math.min(Math.max(markTo, hs), end);
  const mark = el("mark", { id: "cited-span", text: text.slice(hs, he) });
  const passage = el(
    "span",
    { className: "cited-passage", lang: target.language }, // a citation's language, voiced as such
    text.slice(start, hs),
    mark,
    text.slice(he, end),
  );
  return { nodes: [text.slice(0, start), passage, text.slice(end)], mark };
}

/**
 * Open a document in the viewer. ``target``: {document, title, start?, end?, text?, highlight?}: a citation
 * from /ask, a deep link's span, or just an id and title (the documents panel). ``trigger`` gets the focus back.
 */
export async function openDocument(target, trigger = null, { link = false } = {}) {
  ui.title.textContent = target.title || target.document;
  ui.id.textContent = target.document;
  ui.body.replaceChildren(el("p", { className: "viewer-status", text: "Loading the document…" }));
  ui.body.setAttribute("aria-busy", "true");
  fromLink = link;
  if (!ui.viewer.open) {
    ui.viewer.showModal();
    ui.viewer.addEventListener("close", () => trigger && trigger.isConnected && trigger.focus(), { once: true });
  }
  const shown = (openings += 1);
  try {
    let doc = await fetchDocument(target.document, link);
    if (!holds(doc, target)) doc = await fetchDocument(target.document, true); // cached before a re-index
    if (!ui.viewer.open || shown !== openings) return; // closed, or another document asked for since
    ui.title.textContent = doc.title;
    if (!holds(doc, target)) {
      ui.body.replaceChildren(
        el("p", {
          className: "viewer-status viewer-changed",
          role: "status",
          text: "This document has changed since this answer was given: ask again to cite its current text.",
        }),
        doc.text,
      );
      return;
    }
    const { nodes, mark } = documentNodes(doc.text, target);
    ui.body.replaceChildren(...nodes);
    if (mark) mark.scrollIntoView({ block: "center" });
    else ui.body.scrollTop = 0;
  } catch (err) {
    const { title, detail } = errorText(err);
    ui.body.replaceChildren(
      el("p", { className: "viewer-status error-title", role: "alert", text: title }),
      el("p", { className: "viewer-status", text: detail }),
    );
  } finally {
    ui.body.setAttribute("aria-busy", "false");
  }
}

// ---------------------------------------------------------------- deep links

const OFFSET = /^\d{1,12}$/;

/** #doc=ID&start=N&end=M -> a viewer target, or null when the address names no document. */
export function linkTarget(hash) {
  const params = new URLSearchParams(hash.replace(/^#/, ""));
  const id = params.get("doc");
  if (!id) return null;
  const start = params.get("start") || "";
  const end = params.get("end") || "";
  if (!OFFSET.test(start) || !OFFSET.test(end) || Number(end) < Number(start)) return { document: id };
  const span = { start: Number(start), end: Number(end) };
  return { document: id, ...span, highlight: span };
}

function openFromAddress() {
  const target = linkTarget(window.location.hash);
  if (target) openDocument(target, null, { link: true });
}

function closeViewer() {
  ui.viewer.close();
}

ui.close.addEventListener("click", closeViewer);
ui.viewer.addEventListener("click", (event) => {
  if (event.target === ui.viewer) closeViewer(); // a click on the backdrop
});
ui.viewer.addEventListener("close", () => {
  openings += 1; // a document still loading is not shown once closed
  if (fromLink && linkTarget(window.location.hash)) {
    // the link has been followed: closing leaves the plain page, and the same link can be opened again
    window.history.replaceState(null, "", window.location.pathname + window.location.search);
  }
  fromLink = false;
});
window.addEventListener("hashchange", openFromAddress);

/** Follow a deep link in the address the page was opened with. */
export function openLinkedDocument() {
  openFromAddress();
}
