// The qa web chat: plain DOM in ES modules, no build step, no inline script (the page is served under a CSP
// of 'self'). Every piece of text that comes from the server or from documents goes through textContent/text
// nodes, never innerHTML, so a document that contains <script> or <img onerror> is shown literally.

import { $, announce, el, plural } from "./dom.js";
import { collectionCount, askedCollections, loadCollections } from "./collections.js";
import { Cancelled, NetworkError, api, errorText } from "./http.js";
import { corpusSample, initLibrary } from "./library.js";
import { unitIndexes } from "./offsets.js";
import { smallTalkText } from "./smalltalk.js";
import { clearDocuments, openDocument, openLinkedDocument } from "./viewer.js";

const TOP_K = 5;
const MAX_TURNS = 20; // the server refuses more (issue 6); the oldest turns go first
const MAX_HISTORY_CHARS = 20000;
const QUESTION_LIMIT = 2000; // shown as a counter; the server is the one that enforces it
const NO_ANSWER_TURN = "No answer found in the documents.";
const HEALTH_IDLE_MS = 5000; // how often the header re-reads /healthz, and while indexing:
const HEALTH_BUSY_MS = 1000;
const HEALTH_TIMEOUT_MS = 10000; // a hung server turns the header red within this, not after /ask's 60 s
const SLOW_MS = 5000; // a question unanswered this long: the header says the server is slow
const ASK_TITLES = { 413: "Too long", 422: "The question was not accepted" };

const ui = {
  corpus: $("corpus"),
  indexing: $("indexing"),
  indexingBar: $("indexing-bar"),
  indexingLabel: $("indexing-label"),
  main: $("main"),
  welcome: $("welcome"),
  messages: $("messages"),
  form: $("composer"),
  input: $("question"),
  send: $("send"),
  sendLabel: document.querySelector("#send .send-label"),
  hint: $("composer-hint"),
  newChat: $("new-chat"),
};

const state = {
  history: [], // [{role, content}], oldest first: earlier turns that let the server read follow-ups
  busy: false,
  corpusKey: null, // what /healthz says about the index; when it changes, cached documents are stale
  slow: false, // a question has waited SLOW_MS: the header says so until it ends, whatever /healthz says
  cancel: null, // aborts the question in flight
};

// ---------------------------------------------------------------- corpus header

let healthTimer = 0;

/** Everything in /healthz that changes when the index does; a new value drops the cached documents. */
function corpusKey(health) {
  const indexing = health.indexing || {};
  const generation = health.generation ?? health.built_at ?? health.indexed_at ?? null;
  return JSON.stringify([health.documents, health.chunks, generation, indexing.started_at, indexing.files_done]);
}

/** The build in progress from /healthz's ``indexing`` (present only while one runs); true while it runs. */
function showIndexing(indexing) {
  if (!indexing || indexing.in_progress === false) {
    ui.indexing.hidden = true;
    return false;
  }
  const done = indexing.files_done || 0;
  const total = indexing.files_total || 0; // null until the server has listed the folder
  const current = indexing.current_file ?? indexing.current;
  const failed = Array.isArray(indexing.failed) ? indexing.failed.length : indexing.failed || 0;
  const parts = [total ? `Indexing ${done.toLocaleString("en")} of ${plural(total, "file", "files")}` : "Indexing"];
  if (current) parts.push(String(current));
  if (failed) parts.push(`${failed.toLocaleString("en")} failed`);
  ui.indexingLabel.textContent = parts.join(" · ");
  if (total) {
    ui.indexingBar.max = total;
    ui.indexingBar.value = done;
  } else {
    ui.indexingBar.removeAttribute("value");
  }
  ui.indexing.hidden = false;
  return true;
}

async function loadHealth() {
  window.clearTimeout(healthTimer);
  let busy = false;
  try {
    const health = await api("/healthz", {}, { timeoutMs: HEALTH_TIMEOUT_MS });
    if (state.slow) {
      showSlow();
    } else if (health.status === "ok") {
      ui.corpus.replaceChildren(
        `Answering from ${plural(health.documents, "document", "documents")}`,
        el("span", { className: "corpus-extra", text: ` · ${plural(health.chunks, "passage", "passages")}` }),
      );
      ui.corpus.dataset.state = "ok";
    } else if (health.status === "indexing") {
      ui.corpus.textContent = "Building the first index: answers start when it is ready";
      ui.corpus.dataset.state = "indexing";
    } else {
      ui.corpus.textContent = "No documents indexed yet: add some under Documents, or to seeds/";
      ui.corpus.dataset.state = "empty";
    }
    ui.corpus.title = `Embedder: ${health.embedder}`;
    busy = showIndexing(health.indexing);
    const key = corpusKey(health);
    if (state.corpusKey !== null && key !== state.corpusKey) clearDocuments();
    state.corpusKey = key;
  } catch (err) {
    ui.corpus.textContent = err instanceof NetworkError ? "Server unreachable" : `Server problem: ${err.message}`;
    ui.corpus.dataset.state = "error";
    ui.indexing.hidden = true;
  }
  healthTimer = window.setTimeout(loadHealth, busy ? HEALTH_BUSY_MS : HEALTH_IDLE_MS);
}

/** The header while a question waits: the server answers /healthz but not the question (or not yet). */
function showSlow() {
  ui.corpus.textContent = "The server is slow to answer: Cancel stops waiting";
  ui.corpus.dataset.state = "slow";
}

// ---------------------------------------------------------------- transcript

function scrollToMessage(node) {
  node.scrollIntoView({ block: "start", behavior: "smooth" });
}

function showConversation() {
  ui.welcome.hidden = true;
  ui.newChat.hidden = false;
}

function addUserMessage(question) {
  const item = el("li", { className: "msg user" }, el("p", { className: "bubble", text: question }));
  ui.messages.append(item);
  return item;
}

function addPending(onCancel) {
  const cancel = el("button", { type: "button", className: "ghost small cancel", text: "Cancel" });
  cancel.addEventListener("click", onCancel);
  const item = el(
    "li",
    { className: "msg assistant pending" },
    el(
      "div",
      { className: "card", role: "status" },
      el("span", { className: "dots", "aria-hidden": "true" }, el("span"), el("span"), el("span")),
      el("span", { text: "Searching the documents…" }),
      cancel,
    ),
  );
  ui.messages.append(item);
  return item;
}

/** The passage as text, with the answering sentence in a <mark>; offsets: code points, absolute in the document. */
function passageNodes(citation) {
  const text = citation.text;
  const { start, highlight } = citation;
  const [hs, he] = unitIndexes(text, [highlight.start - start, highlight.end - start]);
  const before = text.slice(0, hs).replace(/^\s+/, "");
  const after = text.slice(he).replace(/\s+$/, "");
  return [before, el("mark", { text: text.slice(hs, he) }), after];
}

/** A citation names its collection where there is more than one to tell apart. */
const showsCollection = (citation) =>
  typeof citation.collection === "string" && citation.collection && collectionCount() !== 1;

function renderCitation(citation) {
  const open = el("button", {
    type: "button",
    className: "link open-doc",
    text: "Open document",
    "aria-label": `Open document ${citation.title}, at citation ${citation.rank}`,
  });
  open.addEventListener("click", () => openDocument(citation, open));
  const page = Number.isInteger(citation.page) ? `p. ${citation.page}` : null;
  return el(
    "li",
    { className: "citation", "data-rank": citation.rank },
    el(
      "div",
      { className: "citation-head" },
      el("span", { className: "badge", text: `[${citation.rank}]` }),
      el("span", { className: "title", text: citation.title }),
      page ? el("span", { className: "page", text: page, title: `Page ${citation.page}` }) : null,
    ),
    // lang: a screen reader voices the passage in its own language (a Russian passage, not in English)
    el("blockquote", { className: "passage", lang: citation.language }, passageNodes(citation)),
    el(
      "div",
      { className: "citation-foot" },
      showsCollection(citation)
        ? el(
            "span",
            { className: "collection" },
            el("span", { className: "sr-only", text: "Collection " }),
            citation.collection,
          )
        : null,
      el("span", { className: "doc-id", text: citation.document }),
      el("span", { className: "score", text: `relevance ${citation.score.toFixed(2)}` }),
      open,
    ),
  );
}

function renderSmallTalk(reply) {
  return el(
    "li",
    { className: "msg assistant is-small-talk" },
    el("article", { className: "card", "aria-label": "Reply" }, el("p", { className: "small-talk", text: reply })),
  );
}

/** The answer is the top citation's sentence: it is in that passage's language. */
const answerLanguage = (body) => (body.citations.length ? body.citations[0].language : null);

function renderAnswer(body) {
  const count = body.citations.length;
  const low = !body.no_answer && body.confidence === "low";
  const head = body.no_answer
    ? el(
        "div",
        { className: "no-answer" },
        el("p", { className: "no-answer-title", text: "No answer found" }),
        el("p", {
          text: count
            ? "Nothing in the documents seems to answer this. These are the closest passages."
            : "Nothing in the documents seems to answer this.",
        }),
      )
    : el(
        "p",
        { className: "answer-text" },
        // a low-confidence answer (qa/confidence.py) may be the wrong sentence: say so, the passages show the rest
        low ? el("span", { className: "possibly", text: "Possibly:\u00a0" }) : null,
        el("span", { lang: answerLanguage(body) }, body.answer),
        // a no-break space keeps the [1] on the sentence's last line
        count ? el("span", { className: "ref", text: "\u00a0[1]", "aria-hidden": "true" }) : null,
      );
  const seconds = (body.took_ms / 1000).toFixed(2);
  return el(
    "li",
    { className: `msg assistant${body.no_answer ? " is-no-answer" : ""}${low ? " is-low-confidence" : ""}` },
    el(
      "article",
      { className: "card", "aria-label": body.no_answer ? "No answer found" : "Answer" },
      head,
      // a plain div, not a labelled section: a second answer would repeat the landmark's name (landmark-unique);
      // h2 follows the page's h1 (heading-order)
      count
        ? el(
            "div",
            { className: "sources" },
            el("h2", { text: body.no_answer ? "Closest passages" : "Sources" }),
            el("ol", { className: "citations" }, body.citations.map(renderCitation)),
          )
        : null,
      el("p", { className: "meta", text: `${plural(count, "source", "sources")} · ${seconds} s` }),
    ),
  );
}

function renderError(err, question, userItem) {
  const { title, detail } = errorText(err, ASK_TITLES);
  const retry = el("button", { type: "button", className: "ghost small", text: "Try again" });
  const item = el(
    "li",
    { className: "msg assistant is-error" },
    el(
      "div",
      { className: "card", role: "alert" },
      el("p", { className: "error-title", text: title }),
      el("p", { className: "error-detail", text: detail }),
      retry,
    ),
  );
  retry.addEventListener("click", () => {
    if (state.busy) return;
    item.remove();
    userItem.remove();
    ask(question);
  });
  return item;
}

function historyToSend() {
  const turns = state.history.slice(-MAX_TURNS);
  let chars = turns.reduce((sum, turn) => sum + turn.content.length, 0);
  while (turns.length && chars > MAX_HISTORY_CHARS) chars -= turns.shift().content.length;
  return turns;
}

function setBusy(busy) {
  state.busy = busy;
  ui.send.disabled = busy;
  ui.send.classList.toggle("busy", busy);
  ui.sendLabel.textContent = busy ? "Searching…" : "Send";
  ui.main.setAttribute("aria-busy", String(busy));
}

/** Small talk gets what the page can be asked about, naming a few documents; it lists no sources. */
async function smallTalkReply(question) {
  const sample = await corpusSample();
  const total = sample ? sample.total : 0;
  return smallTalkText(question, total, sample ? sample.titles : []);
}

/** A question taken back (Cancel, or Escape in the box): it returns to the box, to edit or send again. */
function withdraw(question, userItem, pending) {
  pending.remove();
  userItem.remove();
  if (!ui.messages.children.length) {
    ui.welcome.hidden = false;
    ui.newChat.hidden = true;
  }
  if (!ui.input.value.trim()) {
    ui.input.value = question;
    updateCounter();
  }
  ui.input.focus();
  announce("Cancelled: the question is back in the box.");
}

async function ask(raw) {
  const question = raw.trim();
  if (!question || state.busy) return false; // empty input is never sent
  // Send is disabled and "Try again" removed below: the focus goes to the box, not to <body>
  ui.input.focus({ preventScroll: true });
  setBusy(true);
  showConversation();
  const controller = new AbortController();
  state.cancel = () => controller.abort();
  const userItem = addUserMessage(question);
  const pending = addPending(state.cancel);
  scrollToMessage(userItem);
  const slowTimer = window.setTimeout(() => {
    state.slow = true;
    showSlow();
  }, SLOW_MS);
  const payload = { question, top_k: TOP_K, history: historyToSend() };
  let unreachable = false;
  const collections = askedCollections();
  if (collections) payload.collections = collections; // only when narrowed: the server's default is all
  try {
    const body = await api("/ask", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(payload),
      signal: controller.signal,
    });
    if (body.no_answer_reason === "small_talk") {
      const reply = await smallTalkReply(question);
      pending.replaceWith(renderSmallTalk(reply));
      state.history.push({ role: "user", content: question }, { role: "assistant", content: reply });
      announce(reply);
      return true;
    }
    pending.replaceWith(renderAnswer(body));
    state.history.push(
      { role: "user", content: question },
      { role: "assistant", content: body.no_answer ? NO_ANSWER_TURN : body.answer },
    );
    const sources = plural(body.citations.length, "source", "sources");
    const said = body.confidence === "low" ? "Possibly" : "Answer";
    announce(
      body.no_answer
        ? `No answer found. ${sources} listed.`
        : [`${said}: `, el("span", { lang: answerLanguage(body) }, body.answer), ` (${sources})`],
    );
  } catch (err) {
    if (err instanceof Cancelled) {
      withdraw(question, userItem, pending);
      return true;
    }
    pending.replaceWith(renderError(err, question, userItem));
    const { title, detail } = errorText(err, ASK_TITLES);
    announce(`${title}. ${detail}`);
    unreachable = err instanceof NetworkError;
  } finally {
    window.clearTimeout(slowTimer);
    const wasSlow = state.slow;
    state.slow = false;
    state.cancel = null;
    setBusy(false);
    if (wasSlow || unreachable || ui.corpus.dataset.state !== "ok") loadHealth(); // the header says what holds now
  }
  return true;
}

function newChat() {
  if (state.busy) return;
  state.history = [];
  ui.messages.replaceChildren();
  ui.welcome.hidden = false;
  ui.newChat.hidden = true;
  ui.input.value = "";
  updateCounter();
  ui.input.focus();
}

// ---------------------------------------------------------------- composer

function updateCounter() {
  const length = ui.input.value.length;
  const near = length > QUESTION_LIMIT * 0.9;
  ui.hint.textContent = near
    ? `${length.toLocaleString("en")} / ${QUESTION_LIMIT.toLocaleString("en")} characters`
    : "Enter to send · Shift+Enter for a new line";
  ui.hint.classList.toggle("over", length > QUESTION_LIMIT);
  if (!CSS.supports("field-sizing", "content")) {
    ui.input.style.height = "auto";
    ui.input.style.height = `${ui.input.scrollHeight}px`;
  }
}

function submit() {
  const text = ui.input.value;
  if (!text.trim()) {
    ui.input.value = "";
    updateCounter();
    ui.input.focus();
    return;
  }
  if (state.busy) return;
  ui.input.value = "";
  updateCounter();
  ask(text);
}

ui.form.addEventListener("submit", (event) => {
  event.preventDefault();
  submit();
});

ui.input.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && state.cancel) {
    event.preventDefault();
    state.cancel(); // Escape stops waiting for the answer, as Cancel does
    return;
  }
  // Enter sends; Shift+Enter keeps the browser's newline; an IME composition is never cut short.
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
    event.preventDefault();
    submit();
  }
});
ui.input.addEventListener("input", updateCounter);

for (const button of document.querySelectorAll(".example")) {
  button.addEventListener("click", () => {
    ask(button.textContent || "");
    ui.input.focus();
  });
}
ui.newChat.addEventListener("click", newChat);

initLibrary({
  onChange: () => {
    clearDocuments(); // an upload or a deletion changed the index
    loadHealth();
    loadCollections(); // their document counts
  },
});
window.addEventListener("qa:key", () => clearDocuments()); // another key may read other documents
updateCounter();
loadHealth();
loadCollections();
openLinkedDocument();
ui.input.focus();
