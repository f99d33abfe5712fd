"""The memory browser's API over real HTTP: a real ``headroom-mcp ui`` process on loopback,
a real daemon and store, httpx as the client. What a browser can and cannot make it do
(tokens, Host and Origin, bad input) and that what it shows is the store's own answers."""

from __future__ import annotations

import html
import json
import re
import socket
import stat

import anyio
import httpx
import pytest
from test_server import stdio_session
from ui_server import XSS, P, Q, UiServer, local_store

from headroom_mcp import injection
from headroom_mcp.api import SyncMemory
from headroom_mcp.errors import HeadroomError
from headroom_mcp.hooks import run_hook
from headroom_mcp.ui.app import STATIC, public_paths
from headroom_mcp.ui.serve import DEFAULT_PORT, bind, check_host, opener_file, page_url


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    """The browser's server over a store holding a few memories of two projects; ``ui.ids`` names them."""
    with local_store(tmp_path_factory.mktemp("ui-http")) as data_dir:
        with SyncMemory(agent_id="claude") as claude, SyncMemory(agent_id="codex") as codex, \
                SyncMemory(agent_id="gemini") as gemini, SyncMemory(agent_id="claude", project=Q) as elsewhere:
            ids = {"uv": claude.save("this repo uses uv, not pip", tags=["tooling"])["id"]}
            ids["restated"] = codex.save("The repository uses uv instead of pip.")["restatement"]
            ids["port"] = gemini.save("the API listens on port 8080", importance=0.8)["id"]
            ids["tabs"] = claude.save("prefer tabs over spaces in Makefiles", scope="user")["id"]
            ids["other"] = elsewhere.save("the other service deploys on Mondays")["id"]
            ids["xss"] = claude.save(XSS)["id"]
        with UiServer(data_dir, {}) as server:
            server.ids = ids
            yield server


def refused(response: httpx.Response, status: int, says: str) -> None:
    """A refusal: the status, and a JSON sentence saying why."""
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert body["error"] and says in body["error_description"], body


def everything() -> list[dict]:
    with SyncMemory() as memory:
        return sorted(memory.get_all(everywhere=True) + memory.get_all(forgotten=True, everywhere=True), key=lambda m: m["id"])


def test_the_page_is_public_and_every_api_call_needs_the_token(ui):
    page = httpx.get(ui.base + "/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    before = everything()
    refused(httpx.get(ui.base + "/api/whoami"), 401, "needs the token from the URL")
    refused(ui.get("/api/whoami", token="not-the-token"), 401, "needs the token")
    refused(httpx.get(ui.base + "/api/memories", params={"token": ui.token}), 401, "needs the token")  # only the header counts
    refused(ui.post(f"/api/memory/{ui.ids['port']}/forget", {}, token=ui.token[:-1]), 401, "needs the token")
    refused(httpx.post(ui.base + f"/api/memory/{ui.ids['port']}/edit", json={"content": "the API listens on port 1"},
                       headers={"Authorization": f"Basic {ui.token}"}), 401, "token")
    assert everything() == before
    who = ui.get("/api/whoami").json()
    assert (who["user_id"], who["mode"], who["can_write"], who["project"]) == ("alice", "local", True, P)


def test_host_origin_and_content_type_are_checked_like_the_http_transports(ui):
    before = everything()
    refused(ui.get("/api/whoami", headers={"Host": "evil.example"}), 421, "does not answer to that address")
    refused(httpx.get(ui.base + "/", headers={"Host": f"evil.example:{ui.port}"}), 421, "Host header")
    refused(ui.get("/api/whoami", headers={"Origin": "http://evil.example"}), 403, "another site")
    refused(ui.post(f"/api/memory/{ui.ids['port']}/forget", {}, headers={"Origin": "http://evil.example"}), 403, "another site")
    form = httpx.post(ui.base + f"/api/memory/{ui.ids['port']}/forget", content=b"x=1",
                      headers={**ui.headers(), "Content-Type": "application/x-www-form-urlencoded"})
    refused(form, 400, "as JSON")
    assert everything() == before
    assert ui.get("/api/whoami", headers={"Origin": ui.base, "Host": f"localhost:{ui.port}"}).status_code == 200


def test_every_answer_carries_a_strict_policy_and_api_answers_are_not_cached(ui):
    for response in (httpx.get(ui.base + "/"), httpx.get(ui.base + "/app.js"), ui.get("/api/memories"), ui.get("/api/nothing-here")):
        csp = response.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["cache-control"] == "no-store"
    refused(ui.get("/api/nothing-here"), 404, "no API route")
    assert httpx.get(ui.base + "/app.js").headers["content-type"].startswith("text/javascript")


def test_the_page_builds_no_html_from_strings():
    """Memory contents reach the page as data: the scripts create elements and text nodes only."""
    scripts = sorted(STATIC.glob("*.js"))
    assert len(scripts) >= 5
    for script in scripts:
        code = script.read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
            assert sink not in code, f"{script.name} uses {sink}"
    html = (STATIC / "index.html").read_text()
    assert re.findall(r"<script[^>]*>", html) == ['<script type="module" src="app.js">']  # no inline script
    assert re.search(r"\son[a-z]+=", html) is None and "style=" not in html  # no inline handlers or styles
    assert {f"/{p.name}" for p in STATIC.iterdir()} | {"/"} == set(public_paths(""))


def test_listing_filters_sorts_and_pages_every_memory_the_user_may_read(ui):
    def ids(**query) -> list[str]:
        answer = ui.get("/api/memories", params=query)
        assert answer.status_code == 200, answer.text
        return [m["id"] for m in answer.json()["memories"]]

    everything_here = ids()
    assert set(ui.ids.values()) - {ui.ids["restated"]} <= set(everything_here)
    assert ui.ids["restated"] not in everything_here  # restatements are history, not memories
    assert ids(project=Q) == [ui.ids["other"]]
    assert ids(project="-") == [ui.ids["tabs"]]
    assert ids(scope="user") == [ui.ids["tabs"]]
    assert ids(agent="gemini") == [ui.ids["port"]]
    assert ids(tag="tooling") == [ui.ids["uv"]]
    assert ids(text="PORT 8080") == [ui.ids["port"]]
    assert ids(since="2999-01-01") == [] and ids(until="2000-01-01") == []
    assert ids(sort="importance")[0] == ui.ids["port"]
    assert ids(sort="seen")[0] == ui.ids["uv"]
    assert ids(limit=2, offset=1) == everything_here[1:3]
    facets = ui.get("/api/memories").json()["facets"]
    assert {P, Q, ""} <= set(facets["project"]) and {"claude", "codex", "gemini"} <= set(facets["agent"])
    refused(ui.get("/api/memories", params={"sort": "random"}), 400, "sort must be one of")
    refused(ui.get("/api/memories", params={"since": "last week"}), 400, "YYYY-MM-DD")
    refused(ui.get("/api/memories", params={"limit": "0"}), 400, "limit must be a whole number")


def test_search_is_the_real_recall_with_its_scores(ui):
    answer = ui.get("/api/search", params={"q": "which package manager does this repo use?"}).json()
    with SyncMemory() as memory:
        expected = memory.search("which package manager does this repo use?", limit=20)
    assert [(r["id"], r["score"]) for r in answer["results"]] == [(r["id"], r["score"]) for r in expected]
    assert answer["results"][0]["id"] == ui.ids["uv"] and answer["results"][0]["score"] > 0
    elsewhere = ui.get("/api/search", params={"q": "when does the other service deploy?", "project": Q}).json()
    assert elsewhere["results"][0]["id"] == ui.ids["other"]
    refused(ui.get("/api/search", params={"q": "  "}), 400, "type what to search for")


def test_one_memory_shows_its_provenance_history_and_similar_ones(ui):
    answer = ui.get(f"/api/memory/{ui.ids['uv']}").json()
    m = answer["memory"]
    assert m["agents"] == ["claude", "codex"] and m["users"] == ["alice"] and m["seen_count"] == 2
    assert [(r["id"], r["agents"]) for r in m["restatements"]] == [(ui.ids["restated"], ["codex"])]
    assert ui.ids["uv"] not in [s["id"] for s in answer["similar"]]
    refused(ui.get("/api/memory/mem_nope"), 404, "no memory with id 'mem_nope'")


def test_edit_supersedes_the_old_memory_and_bad_edits_change_nothing(ui):
    with SyncMemory(agent_id="claude") as memory:
        old = memory.save("the staging database is postgres 15", tags=["db"], importance=0.7)["id"]
        edited = ui.post(f"/api/memory/{old}/edit", {"content": "the staging database is postgres 16"})
        assert edited.status_code == 200, edited.text
        new = edited.json()["id"]
        assert edited.json()["status"] == "superseded"
        gone, now = memory.get(old), memory.get(new)
        assert (gone["status"], gone["superseded_by"]) == ("superseded", new)
        assert (now["content"], now["supersedes"], now["tags"], now["importance"], now["scope"], now["project"]) == \
            ("the staging database is postgres 16", old, ["db"], 0.7, "project", P)
        history = ui.get(f"/api/memory/{old}").json()["history"]
        assert history["superseded_by"]["id"] == new
        before = everything()
        refused(ui.post(f"/api/memory/{old}/edit", {"content": "the staging database is postgres 17"}), 409,
                f"is superseded by {new} since this page showed it; nothing was changed")
        refused(ui.post(f"/api/memory/{new}/edit", {"content": "x" * 9000}), 400, "the limit is 8192")
        refused(ui.post(f"/api/memory/{new}/edit", {"content": 42}), 400, "content")
        refused(ui.post(f"/api/memory/{new}/edit", {"content": " the staging  database is postgres 16 "}), 400, "the same as the old")
        refused(ui.post("/api/memory/mem_nope/edit", {"content": "something new"}), 404, "no memory with id 'mem_nope'")
        refused(ui.post(f"/api/memory/{new}/edit", {"content": "y" * 300_000}), 413, "over 262144 bytes")
        refused(httpx.post(ui.base + f"/api/memory/{new}/edit", content=b"{not json", headers={**ui.headers(), "Content-Type": "application/json"}),
                400, "not JSON")
        assert everything() == before


def test_forget_lists_it_as_forgotten_and_undo_restores_it(ui):
    with SyncMemory(agent_id="claude") as memory:
        saved = memory.save("the nightly job runs at 02:00 UTC")["id"]
        assert ui.post(f"/api/memory/{saved}/forget", {}).json()["forgotten"] == [saved]
        assert memory.get(saved)["status"] == "forgotten"
        listed = ui.get("/api/forgotten").json()["memories"]
        assert [m["id"] for m in listed if m["id"] == saved] == [saved] and listed[0]["restorable_until"]
        before = everything()
        refused(ui.post(f"/api/memory/{saved}/forget", {}), 409, "is forgotten since this page showed it")
        refused(ui.post("/api/restore", {"ids": ["mem_nope"]}), 404, "nothing was restored")
        refused(ui.post("/api/restore", {"ids": "mem_x"}), 400, "non-empty list")
        assert everything() == before
        assert ui.post("/api/restore", {"ids": [saved]}).json()["restored"] == [saved]
        assert memory.get(saved)["status"] == "active"


def test_importance_and_tags_change_in_place_and_bad_values_change_nothing(ui):
    with SyncMemory(agent_id="claude") as memory:
        saved = memory.save("deploys need two approvals", tags=["deploy"])["id"]
        done = ui.post(f"/api/memory/{saved}/update", {"importance": 0.9, "tags": ["deploy", "policy"]})
        assert done.status_code == 200, done.text
        assert (memory.get(saved)["importance"], memory.get(saved)["tags"]) == (0.9, ["deploy", "policy"])
        before = everything()
        refused(ui.post(f"/api/memory/{saved}/update", {"importance": 2}), 400, "between 0 and 1")
        refused(ui.post(f"/api/memory/{saved}/update", {"tags": ["ok", "ghp_" + "a1B2" * 9]}), 400, "looks like a secret")
        refused(ui.post(f"/api/memory/{saved}/update", {"content": "sneaky"}), 400, "takes importance and tags")
        refused(ui.post(f"/api/memory/{saved}/update", {}), 400, "give importance, tags or both")
        refused(ui.post("/api/memory/mem_nope/update", {"importance": 0.1}), 404, "no memory")
        deep = b'{"importance": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"  # under the size cap, past the parser's depth
        refused(httpx.post(ui.base + f"/api/memory/{saved}/update", content=deep, timeout=60,
                           headers={**ui.headers(), "Content-Type": "application/json"}), 400, "not JSON")
        refused(ui.get("/api/memories", params={"limit": "\u00b2"}), 400, "limit must be a whole number")
        assert everything() == before


def test_unmerge_makes_a_restatement_a_memory_of_its_own(ui):
    with SyncMemory(agent_id="claude") as claude, SyncMemory(agent_id="gemini") as gemini:
        first = claude.save("the frontend is built with vite")["id"]
        restated = gemini.save("The frontend uses vite to build.")
        assert restated["status"] == "merged", restated
        done = ui.post("/api/unmerge", {"id": restated["restatement"]})
        assert done.json() == {"id": restated["restatement"], "status": "unmerged", "unmerged_from": first}
        assert claude.get(restated["restatement"])["status"] == "active" and claude.get(first)["agents"] == ["claude"]
        refused(ui.post("/api/unmerge", {"id": first}), 400, "not a merged restatement")


def _resource_text(data_dir) -> str:
    async def read() -> str:
        async with stdio_session(data_dir) as (session, _):
            return (await session.read_resource("memory://context")).contents[0].text
    return anyio.run(read)


def test_the_preview_is_what_the_hooks_and_the_resource_give(ui):
    preview = ui.get("/api/preview", params={"project": P, "agent": "codex", "prompt": "which package manager should I use?"}).json()
    hook = run_hook("session-start", json.dumps({"session_id": "preview-test"}), agent="codex")
    assert preview["session_start"]["text"] == hook["hookSpecificOutput"]["additionalContext"]
    assert preview["session_start"]["output"] == hook
    assert "this repo uses uv, not pip" in preview["session_start"]["text"]
    assert preview["session_start"]["tokens"] == injection.estimate_tokens(preview["session_start"]["text"])
    prompt = run_hook("prompt", json.dumps({"session_id": "preview-test-2", "prompt": "which package manager should I use?"}), agent="codex")
    assert preview["prompt"]["text"] == prompt["hookSpecificOutput"]["additionalContext"]
    assert preview["resource"]["text"] == _resource_text(ui.data_dir)
    other = ui.get("/api/preview", params={"project": Q, "agent": "claude"}).json()["session_start"]["text"]
    assert "the other service deploys on Mondays" in other and "this repo uses uv" not in other
    refused(ui.get("/api/preview", params={"agent": "<script>"}), 400, "agent_id")


def test_activity_counts_memories_by_week_agent_project_and_merges(ui):
    data = ui.get("/api/activity").json()
    with SyncMemory() as memory:
        active = memory.get_all(everywhere=True)
        merged = memory.get_all(everywhere=True, merged=True)
    assert data["total"] == len(active) and data["restatements"] == len(merged) >= 1
    assert sum(map(sum, data["by_agent"].values())) == len(active) == sum(map(sum, data["by_project"].values()))
    assert sum(map(sum, data["merges"].values())) == len(merged)
    assert data["by_agent"]["gemini"][-1] >= 1 and data["by_project"][Q][-1] == 1
    assert all(len(counts) == len(data["weeks"]) for counts in data["by_scope"].values())


def test_the_browser_is_started_on_a_private_file_and_the_port_falls_back(tmp_path):
    url = page_url("127.0.0.1", 8766, 'tok"<x>')
    opener = opener_file(tmp_path, url)
    text = opener.read_text()
    assert stat.S_IMODE(opener.stat().st_mode) == 0o600  # the token is in it: the user's eyes only
    assert html.escape(url, quote=True) in text and "<x>" not in text
    assert page_url("::1", 9, "t") == "http://[::1]:9/#token=t"
    assert check_host("localhost") is None and "loopback only" in check_host("0.0.0.0")
    blocker = socket.socket()
    try:
        try:
            blocker.bind(("127.0.0.1", DEFAULT_PORT))
            blocker.listen(1)
        except OSError:
            pass  # something else holds it already: the same situation
        with bind("127.0.0.1", None) as sock:
            assert sock.getsockname()[1] not in (DEFAULT_PORT, 0)
        with pytest.raises(HeadroomError, match="choose another --port"):
            bind("127.0.0.1", DEFAULT_PORT)
    finally:
        blocker.close()
