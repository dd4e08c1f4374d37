// DOM helpers shared by the page's modules. Text from the server or from documents only ever becomes text
// nodes or textContent, never HTML, so a document holding <script> or <img onerror> runs nothing.

/** Build an element; string children become text nodes (never parsed as HTML). */
export function el(tag, props = {}, ...children) {
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

export const $ = (id) => document.getElementById(id);

export const plural = (n, one, many) => `${n.toLocaleString("en")} ${n === 1 ? one : many}`;

/**
 * The live region a screen reader hears now: the one inside the open dialog (a modal dialog makes the rest of
 * the page inert, and Chromium then drops what changes there), else the page's own.
 */
function liveRegion() {
  const dialogs = Array.from(document.querySelectorAll("dialog[open]")).filter((d) => d.querySelector(".announcer"));
  const dialog = dialogs.find((d) => d.contains(document.activeElement)) || dialogs.at(-1);
  return (dialog && dialog.querySelector(".announcer")) || $("announcer");
}

/**
 * Screen readers hear each message once; clearing first makes a repeated message count as a change.
 * ``message``: text, or an array of text and nodes (a span with lang=… is voiced in its own language).
 */
export function announce(message) {
  const region = liveRegion();
  region.textContent = "";
  const parts = Array.isArray(message) ? message : [message];
  window.setTimeout(() => {
    region.replaceChildren(...parts.filter((part) => part !== null && part !== undefined));
  }, 50);
}

/** 1536 -> "1.5 KB": sizes in the documents panel. */
export function formatBytes(bytes) {
  if (typeof bytes !== "number" || !Number.isFinite(bytes)) return "";
  const units = ["bytes", "KB", "MB", "GB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? plural(bytes, "byte", "bytes") : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** A time the server sent (ISO text or Unix seconds) in the reader's own format. */
export function formatTime(value) {
  if (value === null || value === undefined || value === "") return "";
  const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toLocaleString();
}
