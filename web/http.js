// Talking to the qa server: fetch for JSON, XMLHttpRequest for uploads (it reports upload progress), the
// API key (asked for on a 401, or handed over in the start-up URL's #token=…, kept for this tab in
// sessionStorage, never in the URL) and one error shape for every failure.

import { $ } from "./dom.js";

const REQUEST_TIMEOUT_MS = 60000;
const KEY_STORAGE = "qa.apiKey";

export class HttpError extends Error {
  constructor(status, detail, body = null) {
    super(detail);
    this.status = status;
    this.detail = detail;
    this.body = body; // the parsed error body, when there was one (a 422 upload names each file)
  }
}

export class NetworkError extends Error {}

/** The person stopped the request (the Cancel button): not an error to show. */
export class Cancelled extends Error {}

function storedKey() {
  try {
    return window.sessionStorage.getItem(KEY_STORAGE) || "";
  } catch {
    return ""; // storage disabled: the key lives for this page only
  }
}

let memoryKey = "";
function saveKey(key) {
  memoryKey = key;
  try {
    if (key) window.sessionStorage.setItem(KEY_STORAGE, key);
    else window.sessionStorage.removeItem(KEY_STORAGE);
  } catch {
    /* storage disabled: keep memoryKey only */
  }
}
const currentKey = () => storedKey() || memoryKey;

/**
 * ``qa serve`` prints http://127.0.0.1:8000/#token=…: keep the token for this tab and take it out of the
 * address at once, so it is not left in the history, a bookmark or a shared screenshot. Runs on import,
 * before any request and before the viewer reads the address's #doc=….
 */
function takeTokenFromAddress() {
  const params = new URLSearchParams(window.location.hash.replace(/^#/, ""));
  const token = params.get("token");
  if (!params.has("token")) return;
  params.delete("token");
  const rest = params.toString();
  window.history.replaceState(null, "", window.location.pathname + window.location.search + (rest ? `#${rest}` : ""));
  if (token) saveKey(token);
}

try {
  window.localStorage.removeItem(KEY_STORAGE); // earlier pages kept the key on disk: a key now lives per tab
} catch {
  /* storage disabled */
}
takeTokenFromAddress();

function detailOf(body, status, statusText) {
  if (body && typeof body.detail === "string" && body.detail) return body.detail;
  return `${status} ${statusText || "error"}`.trim();
}

async function readBody(response) {
  try {
    return await response.json();
  } catch {
    return null; // not JSON (a proxy's error page, an empty 204)
  }
}

/** A 401: forget a refused key and ask for one; false when the person cancels. */
async function keyAfter401(sentKey) {
  if (sentKey) saveKey(""); // the stored key was refused
  const entered = await askForKey(sentKey ? "That key was not accepted. Check it and try again." : null);
  return Boolean(entered);
}

/**
 * fetch + the API key + one error shape. A 401 asks the person for the key (once), stores it and
 * retries; a failed fetch becomes NetworkError, an aborted ``init.signal`` Cancelled; any other non-2xx
 * becomes HttpError(status, detail). A 204 resolves to null. ``timeoutMs`` bounds each attempt.
 */
export async function api(path, init = {}, { timeoutMs = REQUEST_TIMEOUT_MS } = {}) {
  for (let attempt = 0; ; attempt += 1) {
    const headers = new Headers(init.headers || {});
    const key = currentKey();
    if (key) headers.set("Authorization", `Bearer ${key}`);
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = init.signal ? AbortSignal.any([init.signal, timeout]) : timeout;
    let response;
    try {
      response = await fetch(path, { ...init, headers, signal });
    } catch (err) {
      if (init.signal && init.signal.aborted) throw new Cancelled("Cancelled.");
      const slow = timeout.aborted;
      throw new NetworkError(slow ? "The server took too long to answer." : "Cannot reach the server.");
    }
    if (response.status === 401 && attempt < 3) {
      const body = await readBody(response);
      if (await keyAfter401(key)) continue;
      throw new HttpError(401, (body && body.detail) || "This server needs an API key.", body);
    }
    if (!response.ok) {
      const body = await readBody(response);
      throw new HttpError(response.status, detailOf(body, response.status, response.statusText), body);
    }
    if (response.status === 204) return null;
    const body = await readBody(response);
    if (body === null) throw new HttpError(response.status, "The server sent a reply this page cannot read.");
    return body;
  }
}

/**
 * POST files as multipart/form-data (one part named "file" each, and ``fields`` such as the collection), reporting the bytes sent through
 * onProgress(loaded, total) and onSent() once the last byte is out (the server then indexes). Resolves to the
 * server's JSON for 2xx; rejects like api(). XMLHttpRequest, because fetch cannot report upload progress.
 */
export async function upload(path, files, { fields = {}, onProgress = () => {}, onSent = () => {} } = {}) {
  for (let attempt = 0; ; attempt += 1) {
    const key = currentKey();
    const { status, statusText, body } = await new Promise((resolve, reject) => {
      const form = new FormData();
      for (const [name, value] of Object.entries(fields)) form.append(name, value);
      for (const file of files) form.append("file", file, file.name);
      const xhr = new XMLHttpRequest();
      xhr.open("POST", path);
      xhr.responseType = "text";
      if (key) xhr.setRequestHeader("Authorization", `Bearer ${key}`);
      xhr.upload.addEventListener("progress", (event) => onProgress(event.loaded, event.total));
      xhr.upload.addEventListener("load", () => onSent());
      xhr.addEventListener("load", () => {
        let parsed = null;
        try {
          parsed = xhr.responseText ? JSON.parse(xhr.responseText) : null;
        } catch {
          /* not JSON */
        }
        resolve({ status: xhr.status, statusText: xhr.statusText, body: parsed });
      });
      xhr.addEventListener("error", () => reject(new NetworkError("Cannot reach the server.")));
      xhr.addEventListener("abort", () => reject(new NetworkError("The upload was cancelled.")));
      xhr.send(form);
    });
    if (status === 401 && attempt < 3 && (await keyAfter401(key))) continue;
    if (status >= 200 && status < 300) return body;
    throw new HttpError(status, detailOf(body, status, statusText), body);
  }
}

// ---------------------------------------------------------------- API key dialog

let keyPrompt = null; // one dialog at a time, shared by concurrent 401s

function askForKey(message) {
  if (keyPrompt) return keyPrompt;
  const dialog = $("key-dialog");
  const form = $("key-form");
  const input = $("api-key");
  const cancel = $("key-cancel");
  keyPrompt = new Promise((resolve) => {
    $("key-message").textContent = message || "This server asks for an API key. It is kept in this tab only.";
    input.value = "";
    const finish = (value) => {
      form.removeEventListener("submit", onSubmit);
      cancel.removeEventListener("click", onCancel);
      dialog.removeEventListener("cancel", onCancel);
      if (dialog.open) dialog.close();
      keyPrompt = null;
      resolve(value);
    };
    const onSubmit = (event) => {
      event.preventDefault();
      const value = input.value.trim();
      if (!value) {
        input.focus();
        return;
      }
      saveKey(value);
      finish(value);
      window.dispatchEvent(new Event("qa:key")); // another key may read other collections
    };
    const onCancel = (event) => {
      event.preventDefault();
      finish(null);
    };
    form.addEventListener("submit", onSubmit);
    cancel.addEventListener("click", onCancel);
    dialog.addEventListener("cancel", onCancel);
    dialog.showModal();
    input.focus();
  });
  return keyPrompt;
}

/** Title and detail for an error, as the transcript, the viewer and the documents panel show it. */
export function errorText(err, titlesByStatus = {}) {
  if (err instanceof NetworkError) {
    return { title: err.message, detail: "Check that the qa server is running (qa serve), then try again." };
  }
  const titles = {
    401: "API key needed",
    403: "Not allowed",
    404: "Not found",
    409: "Already taken",
    413: "Too large",
    415: "Not accepted",
    422: "Not accepted",
    429: "Too many requests",
    503: "The service is not ready",
    ...titlesByStatus,
  };
  const status = err instanceof HttpError ? err.status : 0;
  return {
    title: titles[status] || (status ? `Server error (${status})` : "Something went wrong"),
    detail: err.detail || err.message || String(err),
  };
}
