// The Memories page: every memory the user may read, filtered, sorted and searched.
import { $, api, attempt, h, memoryLink, projectName, put, when } from "./core.js";

const PAGE = 50;
const FILTERS = ["project", "scope", "agent", "tag", "since", "until", "sort"];
const state = { offset: 0, rows: [], facets: null, searching: false };

function filterValues() {
  const out = {};
  for (const name of FILTERS) out[name] = $("f-" + name).value;
  return out;
}

/** One memory as a focusable row: Enter (or a click) opens it. */
export function row(m, { score = false, actions = [] } = {}) {
  const meta = [
    h("span", { class: "badge scope-" + m.scope }, m.scope),
    h("span", { class: "project", title: m.project || "user-wide" }, projectName(m.project)),
    h("span", { class: "agents", title: "asserted by" }, (m.agents || []).join(", ") || "unknown"),
  ];
  if (m.importance !== undefined) meta.push(h("span", { class: "importance", title: "importance" }, "importance " + Number(m.importance).toFixed(2)));
  if (m.seen_count > 1) meta.push(h("span", { class: "seen", title: "times asserted" }, "said ×" + m.seen_count));
  for (const tag of m.tags || []) meta.push(h("span", { class: "tag" }, "#" + tag));
  meta.push(when(m.updated_at));
  if (score) meta.unshift(h("span", { class: "score", title: "recall score" }, "score " + Number(m.score).toFixed(2)));
  const li = h("li", { class: "row", tabindex: "0", "data-id": m.id },
    h("p", { class: "content" }, m.content), h("div", { class: "meta" }, meta), actions.length ? h("div", { class: "row-actions" }, actions) : null);
  li.addEventListener("click", (event) => { if (!event.target.closest("button")) location.hash = memoryLink(m.id); });
  return li;
}

/** Up/Down (and j/k) move between rows, Home/End to the ends, Enter opens. */
export function keyboardRows(list) {
  list.addEventListener("keydown", (event) => {
    const current = event.target.closest(".row");
    if (!current || event.target !== current) return;
    const rows = [...list.querySelectorAll(".row")];
    const at = rows.indexOf(current);
    const moves = { ArrowDown: at + 1, j: at + 1, ArrowUp: at - 1, k: at - 1, Home: 0, End: rows.length - 1 };
    if (event.key === "Enter") {
      event.preventDefault();
      location.hash = memoryLink(current.dataset.id);
    } else if (event.key in moves && rows[moves[event.key]]) {
      event.preventDefault();
      rows[moves[event.key]].focus();
    }
  });
}

function options(select, counts, allLabel, label = (v) => v) {
  const keep = select.value;
  const items = [h("option", { value: "" }, allLabel)];
  for (const [value, n] of Object.entries(counts || {})) {
    items.push(h("option", { value: value || "-" }, `${label(value || "-")} (${n})`));
  }
  put(select, items);
  select.value = [...select.options].some((o) => o.value === keep) ? keep : "";
}

function showFacets(facets) {
  state.facets = facets;
  options($("f-project"), facets.project, "All projects", (p) => (p === "-" ? "user-wide (no project)" : p));
  options($("f-scope"), facets.scope, "All scopes");
  options($("f-agent"), facets.agent, "All agents");
  options($("f-tag"), facets.tag, "All tags");
}

/** The facets of the last listing (the other pages offer the same projects and agents). */
export const facets = () => state.facets;

async function listPage(more) {
  const query = { ...filterValues(), text: $("q").value, offset: more ? state.offset : 0, limit: PAGE };
  const data = await api("memories", { query });
  showFacets(data.facets);
  state.offset = data.offset + data.memories.length;
  const rows = data.memories.map((m) => row(m));
  if (more) $("rows").append(...rows);
  else put($("rows"), rows);
  const shown = $("rows").children.length;
  put($("count"), data.all === 0 ? "No memories yet. Agents add them with remember (or: headroom-mcp remember \"...\")."
    : `${shown} of ${data.total} memories` + (data.total !== data.all ? ` (filtered from ${data.all})` : ""));
  $("more").hidden = state.offset >= data.total;
}

async function searchPage() {
  const f = filterValues();
  const data = await api("search", { query: { q: $("q").value, project: f.project, scope: f.scope, agent: f.agent, tag: f.tag } });
  put($("rows"), data.results.map((m) => row(m, { score: true })));
  const where = data.project ? projectName(data.project) : "user-wide memories";
  put($("count"), data.results.length ? `${data.results.length} best matches by meaning and keywords in ${where} (recall, best first)`
    : `Nothing relevant in ${where}: recall returns nothing rather than noise. Try other words, or pick a project.`);
  $("more").hidden = true;
}

/** Load the page as the controls say: by meaning (recall) when asked and there is a query, else the filtered list. */
export async function load(more = false) {
  state.searching = $("mode").value === "meaning" && $("q").value.trim() !== "";
  return attempt(() => (state.searching ? searchPage() : listPage(more)));
}

let typing = 0;

export function setup() {
  $("search").addEventListener("submit", (event) => { event.preventDefault(); load(); });
  $("q").addEventListener("input", () => {
    if ($("mode").value !== "text") return;
    clearTimeout(typing);
    typing = setTimeout(() => load(), 250);
  });
  $("mode").addEventListener("change", () => load());
  for (const name of FILTERS) $("f-" + name).addEventListener("change", () => load());
  $("more").addEventListener("click", () => load(true));
  keyboardRows($("rows"));
}
