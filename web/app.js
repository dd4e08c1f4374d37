// The qa web chat: plain DOM, no build step, no inline script (the page is served under a CSP of 'self').
// Every piece of text that comes from the server or from documents goes through textContent/text nodes,
// never innerHTML, so a document that contains <script> or <img onerror> is shown literally and runs nothing.
"use strict";

(() => {
  const TOP_K = 5;
  const MAX_TURNS = 20; // the server refuses more (issue 6); the oldest turns go first
  const MAX_HISTORY_CHARS = 20000;
  const QUESTION_LIMIT = 2000; // shown as a counter; the server is the one that enforces it
  const REQUEST_TIMEOUT_MS = 60000;
  const KEY_STORAGE = "qa.apiKey";
  const NO_ANSWER_TURN = "No answer found in the documents.";

  const $ = (id) => document.getElementById(id);
  const ui = {
    corpus: $("corpus"),
    main: $("main"),
    welcome: $("welcome"),
    messages: $("messages"),
    announcer: $("announcer"),
    form: $("composer"),
    input: $("question"),
    send: $("send"),
    sendLabel: document.querySelector("#send .send-label"),
    hint: $("composer-hint"),
    newChat: $("new-chat"),
    viewer: $("viewer"),
    viewerTitle: $("viewer-title"),
    viewerId: $("viewer-id"),
    viewerBody: $("viewer-body"),
    viewerClose: $("viewer-close"),
    keyDialog: $("key-dialog"),
    keyForm: $("key-form"),
    keyInput: $("api-key"),
    keyMessage: $("key-message"),
    keyCancel: $("key-cancel"),
  };

  const state = {
    history: [], // [{role, content}], oldest first: earlier turns that let the server read follow-ups
    busy: false,
    documents: new Map(), // id -> Promise<{id, title, text}>
  };

  // ---------------------------------------------------------------- DOM helpers

  /** Build an element; string children become text nodes (never parsed as HTML). */
  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(props)) {
      if (value === undefined || value === null || value === false) continue;
      if (name === "className") node.className = value;
      else if (name === "text") node.textContent = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  function announce(message) {
    // Clearing first makes a repeated message count as a change, so it is read again.
    ui.announcer.textContent = "";
    window.setTimeout(() => {
      ui.announcer.textContent = message;
    }, 50);
  }

  const plural = (n, one, many) => `${n.toLocaleString("en")} ${n === 1 ? one : many}`;

  // ---------------------------------------------------------------- HTTP

  class HttpError extends Error {
    constructor(status, detail) {
      super(detail);
      this.status = status;
      this.detail = detail;
    }
  }

  class NetworkError extends Error {}

  function storedKey() {
    try {
      return window.localStorage.getItem(KEY_STORAGE) || "";
    } catch {
      return ""; // storage disabled: the key lives for this page only
    }
  }

  let memoryKey = "";
  function saveKey(key) {
    memoryKey = key;
    try {
      if (key) window.localStorage.setItem(KEY_STORAGE, key);
      else window.localStorage.removeItem(KEY_STORAGE);
    } catch {
      /* storage disabled: keep memoryKey only */
    }
  }
  const currentKey = () => storedKey() || memoryKey;

  async function errorDetail(response) {
    try {
      const body = await response.json();
      if (body && typeof body.detail === "string" && body.detail) return body.detail;
    } catch {
      /* not our JSON error shape */
    }
    return `${response.status} ${response.statusText || "error"}`.trim();
  }

  /**
   * fetch + the API key + one error shape. A 401 asks the person for the key (once), stores it and
   * retries; a failed fetch becomes NetworkError; any other non-2xx becomes HttpError(status, detail).
   */
  async function api(path, init = {}) {
    for (let attempt = 0; ; attempt += 1) {
      const headers = new Headers(init.headers || {});
      const key = currentKey();
      if (key) headers.set("Authorization", `Bearer ${key}`);
      let response;
      try {
        response = await fetch(path, { ...init, headers, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
      } catch (err) {
        const slow = err && err.name === "TimeoutError";
        throw new NetworkError(slow ? "The server took too long to answer." : "Cannot reach the server.");
      }
      if (response.status === 401 && attempt < 3) {
        const detail = await errorDetail(response);
        if (key) saveKey(""); // the stored key was refused
        const entered = await askForKey(key ? "That key was not accepted. Check it and try again." : null);
        if (!entered) throw new HttpError(401, detail || "This server needs an API key.");
        continue;
      }
      if (!response.ok) throw new HttpError(response.status, await errorDetail(response));
      try {
        return await response.json();
      } catch {
        throw new HttpError(response.status, "The server sent a reply this page cannot read.");
      }
    }
  }

  const encodeDocId = (id) => id.split("/").map(encodeURIComponent).join("/");

  // ---------------------------------------------------------------- API key dialog

  let keyPrompt = null; // one dialog at a time, shared by concurrent 401s

  function askForKey(message) {
    if (keyPrompt) return keyPrompt;
    keyPrompt = new Promise((resolve) => {
      ui.keyMessage.textContent = message || "This server asks for an API key. It is kept in this browser only.";
      ui.keyInput.value = "";
      const finish = (value) => {
        ui.keyForm.removeEventListener("submit", onSubmit);
        ui.keyCancel.removeEventListener("click", onCancel);
        ui.keyDialog.removeEventListener("cancel", onCancel);
        if (ui.keyDialog.open) ui.keyDialog.close();
        keyPrompt = null;
        resolve(value);
      };
      const onSubmit = (event) => {
        event.preventDefault();
        const value = ui.keyInput.value.trim();
        if (!value) {
          ui.keyInput.focus();
          return;
        }
        saveKey(value);
        finish(value);
      };
      const onCancel = (event) => {
        event.preventDefault();
        finish(null);
      };
      ui.keyForm.addEventListener("submit", onSubmit);
      ui.keyCancel.addEventListener("click", onCancel);
      ui.keyDialog.addEventListener("cancel", onCancel);
      ui.keyDialog.showModal();
      ui.keyInput.focus();
    });
    return keyPrompt;
  }

  // ---------------------------------------------------------------- corpus header

  async function loadHealth() {
    try {
      const health = await api("/healthz");
      if (health.status === "ok") {
        ui.corpus.replaceChildren(
          `Answering from ${plural(health.documents, "document", "documents")}`,
          el("span", { className: "corpus-extra", text: ` · ${plural(health.chunks, "passage", "passages")}` }),
        );
        ui.corpus.dataset.state = "ok";
      } else {
        ui.corpus.textContent = "No documents indexed yet: add files to seeds/ and run qa index";
        ui.corpus.dataset.state = "empty";
      }
      ui.corpus.title = `Embedder: ${health.embedder}`;
    } catch (err) {
      ui.corpus.textContent = err instanceof NetworkError ? "Server unreachable" : `Server problem: ${err.message}`;
      ui.corpus.dataset.state = "error";
    }
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

  function addPending() {
    const item = el(
      "li",
      { className: "msg assistant pending" },
      el(
        "div",
        { className: "card", role: "status" },
        el("span", { className: "dots", "aria-hidden": "true" }, el("span"), el("span"), el("span")),
        el("span", { text: "Searching the documents…" }),
      ),
    );
    ui.messages.append(item);
    return item;
  }

  /** The passage as text, with the answering sentence in a <mark>; offsets are absolute in the document. */
  function passageNodes(citation) {
    const text = citation.text;
    const clamp = (n) => Math.max(0, Math.min(text.length, n));
    const hs = clamp(citation.highlight.start - citation.start);
    const he = clamp(citation.highlight.end - citation.start);
    const before = text.slice(0, hs).replace(/^\s+/, "");
    const after = text.slice(he).replace(/\s+$/, "");
    return [before, el("mark", { text: text.slice(hs, he) }), after];
  }

  function renderCitation(citation) {
    const open = el("button", {
      type: "button",
      className: "link open-doc",
      text: "Open document",
      "aria-label": `Open document ${citation.title}, at citation ${citation.rank}`,
    });
    open.addEventListener("click", () => openDocument(citation, open));
    return el(
      "li",
      { className: "citation", "data-rank": citation.rank },
      el(
        "div",
        { className: "citation-head" },
        el("span", { className: "badge", text: `[${citation.rank}]` }),
        el("span", { className: "title", text: citation.title }),
      ),
      el("blockquote", { className: "passage" }, passageNodes(citation)),
      el(
        "div",
        { className: "citation-foot" },
        el("span", { className: "doc-id", text: citation.document }),
        el("span", { className: "score", text: `relevance ${citation.score.toFixed(2)}` }),
        open,
      ),
    );
  }

  function renderAnswer(body) {
    const count = body.citations.length;
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
          body.answer,
          // a no-break space keeps the [1] on the sentence's last line
          count ? el("span", { className: "ref", text: "\u00a0[1]", "aria-hidden": "true" }) : null,
        );
    const seconds = (body.took_ms / 1000).toFixed(2);
    return el(
      "li",
      { className: `msg assistant${body.no_answer ? " is-no-answer" : ""}` },
      el(
        "article",
        { className: "card", "aria-label": body.no_answer ? "No answer found" : "Answer" },
        head,
        count
          ? el(
              "section",
              { className: "sources", "aria-label": body.no_answer ? "Closest passages" : "Sources" },
              el("h3", { text: body.no_answer ? "Closest passages" : "Sources" }),
              el("ol", { className: "citations" }, body.citations.map(renderCitation)),
            )
          : null,
        el("p", { className: "meta", text: `${plural(count, "source", "sources")} · ${seconds} s` }),
      ),
    );
  }

  function errorText(err) {
    if (err instanceof NetworkError) {
      return {
        title: err.message,
        detail: "Check that the qa server is running (qa serve), then try again.",
      };
    }
    const titles = {
      401: "API key needed",
      404: "Not found",
      413: "Too long",
      415: "Not accepted",
      422: "The question was not accepted",
      429: "Too many requests",
      503: "The service is not ready",
    };
    const status = err instanceof HttpError ? err.status : 0;
    return {
      title: titles[status] || (status ? `Server error (${status})` : "Something went wrong"),
      detail: err.detail || err.message || String(err),
    };
  }

  function renderError(err, question, userItem) {
    const { title, detail } = errorText(err);
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

  async function ask(raw) {
    const question = raw.trim();
    if (!question || state.busy) return false; // empty input is never sent
    setBusy(true);
    showConversation();
    const userItem = addUserMessage(question);
    const pending = addPending();
    scrollToMessage(userItem);
    const payload = { question, top_k: TOP_K, history: historyToSend() };
    try {
      const body = await api("/ask", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(payload),
      });
      pending.replaceWith(renderAnswer(body));
      state.history.push(
        { role: "user", content: question },
        { role: "assistant", content: body.no_answer ? NO_ANSWER_TURN : body.answer },
      );
      const sources = plural(body.citations.length, "source", "sources");
      announce(body.no_answer ? `No answer found. ${sources} listed.` : `Answer: ${body.answer} (${sources})`);
      if (ui.corpus.dataset.state !== "ok") loadHealth();
    } catch (err) {
      pending.replaceWith(renderError(err, question, userItem));
      const { title, detail } = errorText(err);
      announce(`${title}. ${detail}`);
      if (err instanceof NetworkError) loadHealth();
    } finally {
      setBusy(false);
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

  // ---------------------------------------------------------------- document viewer

  function fetchDocument(id) {
    if (!state.documents.has(id)) {
      const request = api(`/documents/${encodeDocId(id)}`);
      request.catch(() => state.documents.delete(id)); // a failure is not cached
      state.documents.set(id, request);
    }
    return state.documents.get(id);
  }

  /** Full text as text nodes; the cited passage wrapped in a span and its answering sentence in a <mark>. */
  function documentNodes(text, citation) {
    const clamp = (n) => Math.max(0, Math.min(text.length, n));
    const start = clamp(citation.start);
    const end = clamp(Math.max(start, citation.end));
    const hs = clamp(Math.min(Math.max(citation.highlight.start, start), end));
    const he = clamp(Math.min(Math.max(citation.highlight.end, hs), end));
    const mark = el("mark", { id: "cited-span", text: text.slice(hs, he) });
    const passage = el("span", { className: "cited-passage" }, text.slice(start, hs), mark, text.slice(he, end));
    return { nodes: [text.slice(0, start), passage, text.slice(end)], mark };
  }

  let viewerOpenings = 0;

  async function openDocument(citation, trigger) {
    ui.viewerTitle.textContent = citation.title;
    ui.viewerId.textContent = citation.document;
    ui.viewerBody.replaceChildren(el("p", { className: "viewer-status", text: "Loading the document…" }));
    ui.viewerBody.setAttribute("aria-busy", "true");
    if (!ui.viewer.open) {
      ui.viewer.showModal();
      ui.viewer.addEventListener("close", () => trigger.isConnected && trigger.focus(), { once: true });
    }
    const shown = (viewerOpenings += 1);
    try {
      const doc = await fetchDocument(citation.document);
      if (!ui.viewer.open || shown !== viewerOpenings) return; // closed, or another document asked for since
      ui.viewerTitle.textContent = doc.title;
      const { nodes, mark } = documentNodes(doc.text, citation);
      ui.viewerBody.replaceChildren(...nodes);
      mark.scrollIntoView({ block: "center" });
    } catch (err) {
      const { title, detail } = errorText(err);
      ui.viewerBody.replaceChildren(
        el("p", { className: "viewer-status error-title", role: "alert", text: title }),
        el("p", { className: "viewer-status", text: detail }),
      );
    } finally {
      ui.viewerBody.setAttribute("aria-busy", "false");
    }
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

  ui.viewerClose.addEventListener("click", () => ui.viewer.close());
  ui.viewer.addEventListener("click", (event) => {
    if (event.target === ui.viewer) ui.viewer.close(); // a click on the backdrop
  });

  updateCounter();
  loadHealth();
  ui.input.focus();
})();
