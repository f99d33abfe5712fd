// One memory, in a dialog over the list: what it says, who said it, its history, and the fixes.
import { $, api, attempt, h, memoryLink, put, session, toast, when } from "./core.js";

let opener = null; // the row that opened the dialog, focused again when it closes
let onChange = () => {};

function fact(label, ...value) {
  return [h("dt", {}, label), h("dd", {}, ...value)];
}

function brief(m, extra) {
  if (!m) return null;
  return h("li", {}, h("a", { href: memoryLink(m.id) }, m.content), " ",
    h("span", { class: "muted" }, [m.status && m.status !== "active" ? m.status : "", (m.agents || []).join(", ")].filter(Boolean).join(" · ")),
    extra ? [" ", extra] : null);
}

function facts(m) {
  const list = [
    ...fact("Scope", h("span", { class: "badge scope-" + m.scope }, m.scope)),
    ...fact("Project", m.project ? h("span", { title: m.project }, m.project) : "user-wide"),
    ...fact("Asserted by agents", (m.agents || []).join(", ") || "unknown"),
    ...fact("Asserted by users", (m.users || []).join(", ")),
    ...fact("Times asserted", String(m.seen_count)),
    ...fact("Importance", Number(m.importance).toFixed(2)),
    ...fact("Tags", (m.tags || []).length ? m.tags.map((t) => h("span", { class: "tag" }, "#" + t)) : "none"),
    ...fact("Created", when(m.created_at), " by ", m.created_by || "unknown"),
    ...fact("Updated", when(m.updated_at)),
  ];
  if (m.session_id) list.push(...fact("Session", m.session_id));
  if (m.expires_at) list.push(...fact("Expires", when(m.expires_at)));
  list.push(...fact("Id", h("code", {}, m.id)));
  return h("dl", { class: "facts" }, list);
}

function statusLine(m, links) {
  if (m.status === "active") return null;
  const newer = links.superseded_by || links.merged_into;
  const words = { superseded: "Replaced by a newer memory", forgotten: "Forgotten", merged: "A restatement merged into another memory" };
  return h("p", { class: "status status-" + m.status }, words[m.status] || m.status,
    newer ? [": ", h("a", { href: memoryLink(newer.id) }, newer.content)] : "");
}

async function act(step, message, after) {
  const result = await attempt(step);
  if (result !== undefined) {
    if (message) toast(message);
    await after(result);
  }
  return result;
}

function editForm(m) {
  const text = h("textarea", { id: "edit-text", rows: "5", "aria-label": "New text", maxlength: "16384" }, m.content);
  const form = h("form", { class: "edit", hidden: true, id: "edit-form" },
    h("label", { for: "edit-text" }, "New text"), text,
    h("p", { class: "hint" }, "Saving stores the new text as a new memory that supersedes this one; the old one stays in its history."),
    h("div", { class: "buttons" }, h("button", { type: "submit", class: "primary", id: "edit-save" }, "Save new version"),
      h("button", { type: "button", onclick: () => { form.hidden = true; } }, "Cancel")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    act(() => api(`memory/${encodeURIComponent(m.id)}/edit`, { method: "POST", body: { content: text.value } }),
      "Saved as a new memory; the old one is kept in its history.", (r) => { onChange(); location.hash = memoryLink(r.id); });
  });
  return form;
}

function tuneForm(m) {
  const range = h("input", { type: "range", id: "tune-importance", min: "0", max: "1", step: "any", value: String(m.importance) });
  const shown = h("output", { for: "tune-importance", id: "tune-importance-value" }, Number(m.importance).toFixed(2));
  range.addEventListener("input", () => { shown.value = Number(range.value).toFixed(2); });
  // Tags hold no commas here (the field splits on them), so a tag that has one is shown but
  // only replaced when the user edits the field: an untouched form never rewrites a value.
  const initialTags = (m.tags || []).join(", ");
  const tags = h("input", { type: "text", id: "tune-tags", value: initialTags, autocomplete: "off", spellcheck: "false" });
  const form = h("form", { class: "tune", id: "tune-form" },
    h("label", { for: "tune-importance" }, "Importance"), h("div", { class: "range" }, range, shown),
    h("label", { for: "tune-tags" }, "Tags (comma-separated)"), tags,
    h("div", { class: "buttons" }, h("button", { type: "submit", id: "tune-save" }, "Save importance and tags")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const body = {};
    if (Number(range.value) !== Number(m.importance)) body.importance = Number(range.value);
    if (tags.value !== initialTags) body.tags = tags.value.split(",").map((t) => t.trim()).filter(Boolean);
    if (!Object.keys(body).length) { toast("Nothing changed."); return; }
    act(() => api(`memory/${encodeURIComponent(m.id)}/update`, { method: "POST", body }),
      "Importance and tags saved.", () => { onChange(); return open(m.id); });
  });
  return form;
}

function forget(m) {
  act(() => api(`memory/${encodeURIComponent(m.id)}/forget`, { method: "POST", body: {} }), null, () => {
    close();
    onChange();
    toast("Forgotten.", { label: "Undo", run: () => act(() => api("restore", { method: "POST", body: { ids: [m.id] } }),
      "Restored.", () => onChange()) });
  });
}

function actions(m) {
  if (!session.who || !session.who.can_write || m.status !== "active") return null;
  const edit = editForm(m);
  return h("section", { class: "actions", "aria-label": "Fix this memory" },
    h("div", { class: "buttons" },
      h("button", { type: "button", id: "edit-open", onclick: () => { edit.hidden = false; $("edit-text").focus(); } }, "Edit text"),
      h("button", { type: "button", id: "forget", class: "danger", onclick: () => forget(m) }, "Forget")),
    edit, tuneForm(m));
}

function restatements(m) {
  const items = (m.restatements || []).map((r) => h("li", {},
    h("span", {}, r.content), " ", h("span", { class: "muted" }, `${(r.agents || []).join(", ")} · ${(r.users || []).join(", ")} · `), when(r.created_at),
    session.who && session.who.can_write ? [" ", h("button", { type: "button", class: "link unmerge", "data-id": r.id,
      onclick: () => act(() => api("unmerge", { method: "POST", body: { id: r.id } }), "Unmerged: it is a memory of its own again.",
        () => { onChange(); return open(m.id); }) }, "Unmerge")] : null));
  return items.length ? [h("h3", {}, "Restatements merged into it"), h("ul", { class: "history", id: "restatements" }, items)] : null;
}

function historyOf(m, data) {
  const parts = [];
  if (data.history.supersedes) parts.push(h("h3", {}, "Replaces"), h("ul", { class: "history" }, brief(data.history.supersedes)));
  if (data.history.superseded_by) parts.push(h("h3", {}, "Replaced by"), h("ul", { class: "history" }, brief(data.history.superseded_by)));
  parts.push(restatements(m));
  if (data.conflicts.length) parts.push(h("h3", {}, "Conflicts with (same subject, another value)"), h("ul", { class: "history" }, data.conflicts.map((c) => brief(c))));
  if (data.similar.length) {
    parts.push(h("h3", {}, "Similar memories"), h("ul", { class: "history", id: "similar" },
      data.similar.map((s) => brief(s, h("span", { class: "score" }, "score " + Number(s.score).toFixed(2))))));
  }
  return parts;
}

/** Open memory ``id`` in the dialog (called by the router for #/memory/ID). */
export async function open(id) {
  const dialog = $("detail");
  if (!dialog.open) {
    opener = document.activeElement && document.activeElement.closest ? document.activeElement.closest(".row") : null;
    dialog.showModal();
  }
  put($("detail-body"), h("p", { class: "muted" }, "Loading…"));
  const data = await attempt(() => api("memory/" + encodeURIComponent(id)));
  if (!data) {
    put($("detail-body"), h("p", { class: "muted" }, "This memory could not be shown (see the message above)."));
    return;
  }
  const m = data.memory;
  put($("detail-title"), m.status === "active" ? "Memory" : `Memory (${m.status})`);
  put($("detail-body"), statusLine(m, data.history), h("p", { class: "content-full", id: "detail-content" }, m.content),
    facts(m), actions(m), h("section", { class: "related", "aria-label": "History" }, historyOf(m, data)));
  $("detail-close").focus();
}

export function close() {
  const dialog = $("detail");
  if (dialog.open) dialog.close();
}

export function setup(changed) {
  onChange = changed;
  const dialog = $("detail");
  $("detail-close").addEventListener("click", () => close());
  dialog.addEventListener("close", () => {
    if (location.hash.startsWith("#/memory/")) history.replaceState(null, "", "#/memories");
    if (opener && opener.isConnected) opener.focus();
    opener = null;
  });
}
