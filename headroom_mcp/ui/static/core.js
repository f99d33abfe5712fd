// What every page shares: building elements from data, the API client, messages.
//
// Memory contents are text that agents wrote, so nothing here ever builds HTML from data:
// elements are created one by one and every value goes in as a text node (textContent).

const TOKEN_KEY = "headroom-mcp-token";

/** An element with attributes and children; strings become text nodes, never markup. */
export function h(tag, attrs = {}, ...children) {
  return fill(document.createElement(tag), attrs, children);
}

/** An SVG element, built the same way. */
export function svg(tag, attrs = {}, ...children) {
  return fill(document.createElementNS("http://www.w3.org/2000/svg", tag), attrs, children);
}

function fill(el, attrs, children) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Empty an element, then put children in it. */
export function put(el, ...children) {
  el.replaceChildren();
  return fill(el, {}, children);
}

export const $ = (id) => document.getElementById(id);

// ---- the token -----------------------------------------------------------------------

/** Take the token from the URL fragment (#token=...) into this tab's storage, and out of the address bar. */
export function takeTokenFromUrl() {
  const match = location.hash.match(/^#token=([^&]+)/);
  if (match) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
    history.replaceState(null, "", location.pathname + location.search + "#/memories");
  }
}

export const token = () => sessionStorage.getItem(TOKEN_KEY) || "";
export const setToken = (value) => sessionStorage.setItem(TOKEN_KEY, value.trim());
export const dropToken = () => sessionStorage.removeItem(TOKEN_KEY);

// ---- the API -------------------------------------------------------------------------

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Call the API; the token goes in a header (never a cookie). Refusals throw ApiError with the server's sentence. */
export async function api(path, { method = "GET", body, query } = {}) {
  const url = new URL("api/" + path, document.baseURI);
  for (const [key, value] of Object.entries(query || {})) {
    if (value !== "" && value !== null && value !== undefined) url.searchParams.set(key, value);
  }
  const headers = { Authorization: "Bearer " + token() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body),
                                  cache: "no-store", credentials: "omit", redirect: "error" });
  } catch (err) {
    throw new ApiError(0, "unreachable", "the server did not answer (is headroom-mcp still running?)");
  }
  let data = null;
  try {
    data = await response.json();
  } catch (err) {
    data = null;
  }
  if (!response.ok) {
    const said = data && data.error_description;
    throw new ApiError(response.status, data && data.error, said || `the server answered ${response.status}`);
  }
  return data;
}

// ---- messages ------------------------------------------------------------------------

/** Show a refusal or failure in the alert bar (the server's own sentence). */
export function notice(message) {
  put($("notice-text"), message);
  $("notice").hidden = false;
}

export function clearNotice() {
  $("notice").hidden = true;
}

let toastTimer = 0;

/** A short confirmation, with an optional action button (Undo). */
export function toast(message, action) {
  const box = $("toast");
  put(box, h("span", {}, message));
  if (action) box.append(h("button", { type: "button", class: "link", onclick: action.run }, action.label));
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { box.hidden = true; }, 15000);
}

export function hideToast() {
  $("toast").hidden = true;
}

/** Run an async step; its refusal goes to the alert bar. Returns its result, or undefined. */
export async function attempt(step) {
  try {
    const result = await step();
    clearNotice();
    return result;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) document.dispatchEvent(new CustomEvent("needs-token", { detail: err.message }));
    notice(err.message || String(err));
    return undefined;
  }
}

// ---- formatting ----------------------------------------------------------------------

/** "3 d ago" for an ISO time (the exact time goes in the title). */
export function ago(iso) {
  if (!iso) return "";
  const seconds = (Date.now() - Date.parse(iso)) / 1000;
  if (seconds < 60) return "just now";
  for (const [unit, size] of [["y", 31536000], ["mo", 2592000], ["d", 86400], ["h", 3600], ["min", 60]]) {
    if (seconds >= size) return `${Math.floor(seconds / size)} ${unit} ago`;
  }
  return "just now";
}

export function when(iso) {
  return iso ? h("time", { datetime: iso, title: iso }, ago(iso)) : "";
}

/** A project id shown short ("github.com/acme/atlas" as "acme/atlas"); "" is user-wide. */
export function projectName(project) {
  if (!project || project === "-") return "user-wide";
  const parts = project.split("/").filter(Boolean);
  return parts.length > 2 ? parts.slice(-2).join("/") : project;
}

export const memoryLink = (id) => "#/memory/" + encodeURIComponent(id);

/** Shared by every page: who is looking (set once the API answered whoami). */
export const session = { who: null };
