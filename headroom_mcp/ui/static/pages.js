// The other pages: what agents see (the hooks' exact text), forgotten memories, activity.
import { $, api, attempt, h, memoryLink, projectName, put, session, toast, when } from "./core.js";
import { facets, keyboardRows, row } from "./memories.js";
import { barChart } from "./charts.js";

// ---- what agents see ---------------------------------------------------------------------

function fillPreviewChoices() {
  const f = facets() || { project: {}, agent: {} };
  const projects = new Set([session.who.project || "-", ...Object.keys(f.project).map((p) => p || "-")]);
  const select = $("p-project");
  const keep = select.value || session.who.project || "-";
  put(select, [...projects].map((p) => h("option", { value: p }, p === "-" ? "user-wide only (no project)" : p)));
  select.value = [...select.options].some((o) => o.value === keep) ? keep : select.options[0].value;
  put($("p-agents"), [...new Set([...session.who.agents, ...Object.keys(f.agent)])].map((a) => h("option", { value: a })));
}

function leftOut(items, why) {
  if (!items.length) return null;
  return [h("h3", {}, why), h("ul", { class: "history" }, items.map((m) => h("li", {},
    h("a", { href: memoryLink(m.id) }, m.content), " ", h("span", { class: "muted" }, `${m.scope} · importance ${Number(m.importance).toFixed(2)}`))))];
}

function hookBlock(title, id, hook, empty) {
  const used = `${hook.tokens} of ${hook.budget} tokens (estimated) · ${hook.injected.length} memories`;
  return h("section", { class: "hook", "aria-labelledby": id + "-title" },
    h("h2", { id: id + "-title" }, title), h("p", { class: "muted" }, hook.text ? used : empty),
    hook.text ? h("pre", { class: "hook-text", id: id + "-text", tabindex: "0" }, hook.text) : null,
    leftOut(hook.left_out, "Not injected (over the budget, or below the prompt hook's score)"));
}

async function showPreview() {
  const query = { project: $("p-project").value, agent: $("p-agent").value.trim(), prompt: $("p-prompt").value.trim() };
  const data = await attempt(() => api("preview", { query }));
  if (!data) return;
  const where = data.project === "-" ? "user-wide memories" : projectName(data.project);
  put($("preview-out"),
    hookBlock(`Session start: ${data.agent} in ${where}`, "hook-session", data.session_start,
      "Nothing: no memory is visible there yet, so the hook prints {} and the agent starts without memory context."),
    data.prompt ? hookBlock("On this prompt", "hook-prompt", data.prompt, "Nothing relevant enough to this prompt: the prompt hook adds nothing.") : null,
    h("section", { class: "hook" }, h("h2", {}, "The memory://context resource"),
      h("p", { class: "muted" }, `${data.resource.tokens} tokens (estimated); clients read it only when asked`),
      h("pre", { class: "hook-text", id: "resource-text", tabindex: "0" }, data.resource.text)));
}

export function showAgentPage() {
  fillPreviewChoices();
  return showPreview();
}

// ---- forgotten ---------------------------------------------------------------------------

export async function showForgotten() {
  const list = $("forgotten-rows");
  if (!session.who.can_write) {
    put(list, h("li", { class: "muted" }, "A read-only token can neither forget nor restore, so it has no forgotten memories to show."));
    return;
  }
  const data = await attempt(() => api("forgotten"));
  if (!data) return;
  if (!data.memories.length) {
    put(list, h("li", { class: "muted" }, "Nothing forgotten."));
    return;
  }
  put(list, data.memories.map((m) => {
    const restore = h("button", { type: "button", class: "restore", onclick: async () => {
      const done = await attempt(() => api("restore", { method: "POST", body: { ids: [m.id] } }));
      if (done) { toast("Restored."); showForgotten(); }
    } }, "Restore");
    const li = row(m, { actions: [h("span", { class: "muted" }, "restorable until ", when(m.restorable_until)), restore] });
    return li;
  }));
}

// ---- activity ----------------------------------------------------------------------------

export async function showActivity() {
  const data = await attempt(() => api("activity"));
  if (!data) return;
  if (!data.weeks.length) {
    put($("charts"), h("p", { class: "muted" }, "No memories yet, so nothing to draw."));
    return;
  }
  // Two charts side by side on a wide window, one on a narrow one (see .charts in app.css).
  const room = $("charts").clientWidth;
  const width = Math.max(280, Math.min(640, (matchMedia("(min-width: 1000px)").matches ? room / 2 : room) - 28));
  const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;
  put($("charts"),
    h("p", { class: "lead" }, `${plural(data.total, "memory", "memories")} and ${plural(data.restatements, "merged restatement", "merged restatements")}, `
      + "by the week they were made (UTC, weeks from Monday)."),
    barChart("Memories made per week, by agent", data.weeks, data.by_agent, undefined, width),
    barChart("Memories made per week, by project", data.weeks, data.by_project, projectName, width),
    barChart("Memories made per week, by scope", data.weeks, data.by_scope, undefined, width),
    barChart("Duplicates merged per week", data.weeks, data.merges, undefined, width));
}

export function setup() {
  $("preview").addEventListener("submit", (event) => { event.preventDefault(); showPreview(); });
  keyboardRows($("forgotten-rows"));
}
