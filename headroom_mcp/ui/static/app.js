// The memory browser's entry point: the token, who is looking, the pages (#/...), the keyboard.
import { $, api, attempt, clearNotice, dropToken, h, hideToast, put, session, setToken, takeTokenFromUrl, token } from "./core.js";
import * as memories from "./memories.js";
import * as detail from "./detail.js";
import * as pages from "./pages.js";

const PAGES = ["memories", "agent", "activity", "forgotten"];
const SHOW = { memories: () => memories.load(), agent: pages.showAgentPage, activity: pages.showActivity, forgotten: pages.showForgotten };
let current = "";

function showPage(name) {
  for (const page of [...PAGES, "login"]) $("page-" + page).hidden = page !== name;
  for (const link of document.querySelectorAll("nav a")) {
    if (link.dataset.page === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  current = name;
}

/** #/memories, #/memory/ID (the dialog over the list), #/agent, #/activity, #/forgotten. */
async function route() {
  if (!session.who) return;
  const hash = location.hash || "#/memories";
  const opened = hash.match(/^#\/memory\/(.+)$/);
  if (opened) {
    if (current !== "memories") {
      showPage("memories");
      memories.load();
    }
    await detail.open(decodeURIComponent(opened[1]));
    return;
  }
  detail.close();
  const name = PAGES.find((p) => hash === "#/" + p) || "memories";
  showPage(name);
  await SHOW[name]();
}

function showWho(who) {
  const role = who.role === "read" ? "read-only" : who.role;
  put($("who"), h("span", { class: "user", id: "who-user" }, who.user_id), " ",
    h("span", { class: "badge role-" + who.role, id: "who-role" }, role), " ",
    h("span", { class: "muted" }, who.mode === "team" ? "team server" : "this machine"), " ",
    who.mode === "team" ? h("button", { type: "button", class: "link", id: "sign-out", onclick: signOut }, "Sign out") : null);
  document.body.classList.toggle("read-only", !who.can_write);
}

function signOut() {
  dropToken();
  session.who = null;
  put($("who"));
  askForToken("Signed out. Paste a token to open the browser again.");
}

function askForToken(why) {
  session.who = null;
  detail.close();
  showPage("login");
  if (why) put($("login-why"), why);
  $("login-token").focus();
}

async function start() {
  if (!token()) {
    askForToken();
    return;
  }
  const who = await attempt(() => api("whoami"));
  if (!who) return;
  session.who = who;
  showWho(who);
  clearNotice();
  if (!location.hash.startsWith("#/")) history.replaceState(null, "", "#/memories");
  await route();
}

function keyboard(event) {
  const typing = event.target.closest("input, textarea, select, [contenteditable]");
  if (event.key === "/" && !typing && !$("detail").open && session.who) {
    event.preventDefault();
    if (current !== "memories") location.hash = "#/memories";
    $("q").focus();
  } else if (event.key === "Escape" && !$("detail").open) {
    hideToast();
    clearNotice();
  }
}

function setup() {
  takeTokenFromUrl();
  memories.setup();
  detail.setup(() => { if (current === "memories") memories.load(); if (current === "forgotten") pages.showForgotten(); });
  pages.setup();
  $("notice-close").addEventListener("click", clearNotice);
  $("login").addEventListener("submit", (event) => {
    event.preventDefault();
    setToken($("login-token").value);
    $("login-token").value = "";
    start();
  });
  document.addEventListener("needs-token", (event) => {
    dropToken();
    askForToken(event.detail);
  });
  document.addEventListener("keydown", keyboard);
  window.addEventListener("hashchange", () => {
    if (location.hash.startsWith("#token=")) {
      takeTokenFromUrl();
      start();
    } else {
      route();
    }
  });
  start();
}

setup();
