// The documents panel: upload (a button, or files dropped on the panel or anywhere on the page) with progress
// and each file's result, and the corpus listed a page at a time, each document deletable after a confirmation.
// POST /documents answers once the files are searchable; GET /documents pages with offset/limit.

import { collectionCount, onCollections, writableCollections } from "./collections.js";
import { $, announce, el, formatBytes, formatTime, plural } from "./dom.js";
import { HttpError, api, errorText, upload } from "./http.js";
import { encodeDocId, openDocument } from "./viewer.js";

const PAGE_SIZE = 20;

const ui = {
  open: $("open-library"),
  dialog: $("library"),
  close: $("library-close"),
  dropzone: $("dropzone"),
  choose: $("upload-choose"),
  input: $("upload-input"),
  progress: $("upload-progress"),
  progressBar: $("upload-bar"),
  progressLabel: $("upload-label"),
  results: $("upload-results"),
  target: $("upload-target"),
  collection: $("upload-collection"),
  readonly: $("upload-readonly"),
  list: $("doc-list"),
  count: $("doc-count"),
  error: $("doc-error"),
  pager: $("doc-pager"),
  prev: $("doc-prev"),
  next: $("doc-next"),
  range: $("doc-range"),
  confirm: $("confirm-delete"),
  confirmText: $("confirm-text"),
  confirmOk: $("confirm-ok"),
  confirmCancel: $("confirm-cancel"),
};

const state = { offset: 0, total: 0, uploading: false, changed: () => {} };

// ---------------------------------------------------------------- upload

function setProgress(label, fraction) {
  ui.progress.hidden = false;
  ui.progressLabel.textContent = label;
  if (fraction === null) ui.progressBar.removeAttribute("value"); // indeterminate: the server is indexing
  else ui.progressBar.value = fraction;
}

function resultItem(result) {
  const ok = result.status === "indexed";
  return el(
    "li",
    { className: `upload-result ${ok ? "is-ok" : "is-failed"}` },
    el("span", { className: "result-status", text: ok ? "Indexed" : "Failed" }),
    el("span", { className: "result-name", text: result.title || result.id || result.name || "" }),
    !ok && result.error ? el("span", { className: "result-reason", text: result.error }) : null,
  );
}

/** Each file's outcome from a 201 or 422 body: {documents: [...]}, or the error shape naming each file. */
function resultsOf(body, files, fallback) {
  if (body && Array.isArray(body.documents)) return body.documents;
  if (body && Array.isArray(body.errors) && body.errors.length) {
    return body.errors.map((item) => ({ title: item.field || "", status: "failed", error: item.message }));
  }
  return files.map((file) => ({ title: file.name, status: "failed", error: fallback }));
}

export async function uploadFiles(fileList) {
  const files = Array.from(fileList || []);
  if (!files.length || state.uploading) return;
  state.uploading = true;
  ui.choose.disabled = true;
  ui.dropzone.classList.add("busy");
  if (!ui.dialog.open) {
    ui.dialog.showModal(); // files dropped on the chat: the panel shows the upload and the corpus
    loadPage(state.offset);
  }
  ui.results.replaceChildren();
  const names = files.length === 1 ? files[0].name : plural(files.length, "file", "files");
  setProgress(`Uploading ${names}…`, 0);
  let results;
  try {
    const collection = writableCollections() ? ui.collection.value : "";
    const body = await upload("/documents", files, {
      fields: collection ? { collection } : {},
      onProgress: (loaded, total) => setProgress(`Uploading ${names}… ${Math.round((100 * loaded) / (total || 1))}%`, loaded / (total || 1)),
      onSent: () => setProgress(`Indexing ${names}…`, null),
    });
    results = resultsOf(body, files, "");
  } catch (err) {
    const { title, detail } = errorText(err, { 413: "Too large", 422: "Not indexed" });
    results =
      err instanceof HttpError && err.status === 422
        ? resultsOf(err.body, files, detail)
        : files.map((file) => ({ title: file.name, status: "failed", error: `${title}: ${detail}` }));
  } finally {
    state.uploading = false;
    showUploadTargets();
    ui.dropzone.classList.remove("busy");
    ui.progress.hidden = true;
    ui.input.value = ""; // choosing the same file again is a new upload
  }
  ui.results.replaceChildren(...results.map(resultItem));
  const indexed = results.filter((r) => r.status === "indexed").length;
  const failed = results.length - indexed;
  announce(`${plural(indexed, "file", "files")} indexed${failed ? `, ${failed} failed` : ""}.`);
  if (indexed) {
    state.changed();
    await loadPage(state.offset);
  }
}

ui.choose.addEventListener("click", () => ui.input.click());
ui.input.addEventListener("change", () => uploadFiles(ui.input.files));

const carriesFiles = (event) => Boolean(event.dataTransfer) && Array.from(event.dataTransfer.types || []).includes("Files");

// The drop zone, and the whole page: files dropped anywhere open the panel and upload.
for (const target of [ui.dropzone, document]) {
  target.addEventListener("dragover", (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
    ui.dropzone.classList.add("over");
  });
  target.addEventListener("drop", (event) => {
    if (!event.dataTransfer || !event.dataTransfer.files.length) return;
    event.preventDefault();
    event.stopPropagation(); // one upload, even though the zone sits inside the page
    ui.dropzone.classList.remove("over");
    uploadFiles(event.dataTransfer.files);
  });
}
ui.dropzone.addEventListener("dragleave", () => ui.dropzone.classList.remove("over"));
document.addEventListener("dragleave", (event) => {
  if (!event.relatedTarget) ui.dropzone.classList.remove("over"); // the pointer left the window
});

/** The upload's collection: a choice among the writable ones; none writable, no upload. */
function showUploadTargets() {
  const writable = writableCollections();
  const chosen = ui.collection.value;
  ui.collection.replaceChildren(...(writable || []).map((c) => el("option", { value: c.name, text: c.name })));
  if (writable && writable.some((c) => c.name === chosen)) ui.collection.value = chosen;
  ui.target.hidden = !writable || !writable.length || collectionCount() < 2; // one collection: nothing to pick
  ui.readonly.hidden = !writable || writable.length > 0;
  ui.choose.disabled = state.uploading || Boolean(writable && !writable.length);
}

onCollections(showUploadTargets);

// ---------------------------------------------------------------- the list

function documentItem(doc) {
  const title = doc.title || doc.id;
  const open = el("button", {
    type: "button",
    className: "link doc-title",
    text: title,
    "aria-label": `Open document ${title}`,
  });
  open.addEventListener("click", () => openDocument({ document: doc.id, title }, open));
  const remove = el("button", {
    type: "button",
    className: "ghost small danger",
    text: "Delete",
    "aria-label": `Delete ${title}`,
  });
  remove.addEventListener("click", () => confirmDelete(doc, remove));
  const pages = typeof doc.pages === "number" && doc.pages > 0 ? plural(doc.pages, "page", "pages") : "";
  const collection = doc.collection && collectionCount() !== 1 ? `in ${doc.collection}` : "";
  const facts = [collection, formatBytes(doc.size), pages, doc.indexed_at ? `indexed ${formatTime(doc.indexed_at)}` : ""];
  return el(
    "li",
    { className: "doc", "data-id": doc.id },
    el(
      "div",
      { className: "doc-main" },
      open,
      el("span", { className: "doc-id", text: doc.id }),
      el("span", { className: "doc-facts", text: facts.filter(Boolean).join(" · ") }),
    ),
    remove,
  );
}

export async function loadPage(offset = 0) {
  ui.error.hidden = true;
  ui.list.setAttribute("aria-busy", "true");
  try {
    const body = await api(`/documents?offset=${Math.max(0, offset)}&limit=${PAGE_SIZE}`);
    state.total = body.total;
    state.offset = body.offset;
    if (!body.documents.length && state.offset > 0 && state.total > 0) {
      return loadPage(Math.max(0, state.offset - PAGE_SIZE)); // the last document of the last page went
    }
    ui.list.replaceChildren(...body.documents.map(documentItem));
    ui.count.textContent = `(${state.total.toLocaleString("en")})`;
    if (!state.total) ui.list.replaceChildren(el("li", { className: "doc-empty", text: "No documents yet: add some above." }));
    const last = state.offset + body.documents.length;
    ui.range.textContent = state.total ? `${state.offset + 1}–${last} of ${state.total.toLocaleString("en")}` : "";
    ui.pager.hidden = state.total <= PAGE_SIZE;
    ui.prev.disabled = state.offset === 0;
    ui.next.disabled = last >= state.total;
  } catch (err) {
    const { title, detail } = errorText(err);
    ui.error.textContent = `${title}: ${detail}`;
    ui.error.hidden = false;
  } finally {
    ui.list.setAttribute("aria-busy", "false");
  }
  return undefined;
}

ui.prev.addEventListener("click", () => loadPage(state.offset - PAGE_SIZE));
ui.next.addEventListener("click", () => loadPage(state.offset + PAGE_SIZE));

// ---------------------------------------------------------------- delete

function confirmDelete(doc, trigger) {
  const title = doc.title || doc.id;
  ui.confirmText.textContent = `“${title}” (${doc.id}) is removed from the documents folder and from the index; answers will no longer cite it.`;
  const finish = async (yes) => {
    ui.confirmOk.removeEventListener("click", onOk);
    ui.confirmCancel.removeEventListener("click", onCancel);
    ui.confirm.removeEventListener("cancel", onCancel);
    if (ui.confirm.open) ui.confirm.close();
    if (!yes) {
      if (trigger.isConnected) trigger.focus();
      return;
    }
    try {
      await api(`/documents/${encodeDocId(doc.id)}`, { method: "DELETE" });
      announce(`Deleted ${title}.`);
      state.changed();
    } catch (err) {
      const { title: problem, detail } = errorText(err);
      ui.error.textContent = `${problem}: ${detail}`;
      ui.error.hidden = false;
      return;
    }
    await loadPage(state.offset);
    ui.error.hidden = true;
  };
  const onOk = () => finish(true);
  const onCancel = (event) => {
    event.preventDefault();
    finish(false);
  };
  ui.confirmOk.addEventListener("click", onOk);
  ui.confirmCancel.addEventListener("click", onCancel);
  ui.confirm.addEventListener("cancel", onCancel);
  ui.confirm.showModal();
  ui.confirmCancel.focus(); // the safe choice has the focus
}

// ---------------------------------------------------------------- the panel

ui.open.addEventListener("click", () => {
  ui.dialog.showModal();
  loadPage(state.offset);
});
ui.close.addEventListener("click", () => ui.dialog.close());
ui.dialog.addEventListener("click", (event) => {
  if (event.target === ui.dialog) ui.dialog.close(); // a click on the backdrop
});

/** ``onChange`` runs after an upload indexed something or a document was deleted (the corpus changed). */
export function initLibrary({ onChange }) {
  state.changed = onChange;
}

/** The corpus size and a few titles, for the small-talk reply; null when the server cannot list them. */
export async function corpusSample(count = 3) {
  try {
    const body = await api(`/documents?offset=0&limit=${count}`);
    return { total: body.total, titles: body.documents.map((doc) => doc.title || doc.id) };
  } catch {
    return null;
  }
}
