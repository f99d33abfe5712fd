"""The memory browser on a team server (``serve --transport http``, at ``/ui``): the same pages
behind team mode's bearer tokens, acting as each token's user with its role. A real server
process, real HTTP, and the real headless Chromium for what each role is shown."""

from __future__ import annotations

import json
import os
import subprocess

import httpx
import pytest
from conftest import kill_daemon
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from test_server import EXE
from test_team import P, TeamServer
from ui_browser import shown, start_browser, wait

from headroom_mcp.api import SyncMemory


@pytest.fixture(scope="module")
def team(tmp_path_factory):
    """A team server with alice (write, P), carol (read, P) and eve (write, Q), and a memory of alice's in P."""
    data_dir = tmp_path_factory.mktemp("ui-team") / "store"
    data_dir.mkdir(mode=0o700)
    server = TeamServer(data_dir)
    server.url = server.start("http")
    server.base = server.url.rsplit("/", 1)[0] + "/ui"
    with SyncMemory(user_id="alice", project=P, agent_id="claude", data_dir=data_dir) as alice:
        server.fact = alice.save("the atlas API listens on port 8080", tags=["api"])["id"]
        server.mine = alice.save("alice prefers dark mode", scope="user")["id"]
    try:
        yield server
    finally:
        server.stop()
        kill_daemon(data_dir)


@pytest.fixture(scope="module")
def browser(team):
    driver = start_browser()
    try:
        yield driver
    finally:
        driver.quit()


def call(team, method: str, path: str, user: str | None, body: object = None, params: dict | None = None,
         **headers: str) -> httpx.Response:
    """One API request as ``user``'s token (none for None)."""
    auth = {"Authorization": f"Bearer {team.token[user]}"} if user else {}
    return httpx.request(method, team.base + path, json=body, params=params, headers={**auth, **headers}, timeout=60)


def refused(response: httpx.Response, status: int, says: str) -> None:
    assert response.status_code == status, (response.status_code, response.text)
    assert says in response.json()["error_description"], response.json()


def stored(team) -> list[dict]:
    with SyncMemory(user_id="alice", project=P, data_dir=team.data_dir) as alice:
        return alice.get_all(everywhere=True)


def test_the_page_is_public_and_its_api_needs_a_bearer_token(team):
    assert httpx.get(team.base, follow_redirects=False).headers["location"] == "/ui/"
    page = httpx.get(team.base + "/")
    assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
    assert httpx.get(team.base + "/app.js").status_code == 200
    refused(call(team, "GET", "/api/whoami", None), 401, "a valid bearer token is required")
    refused(httpx.get(team.base + "/api/whoami", headers={"Authorization": "Bearer hmcp_000000000000_" + "x" * 43}), 401, "bearer token")
    refused(call(team, "GET", "/api/whoami", "alice", Origin="http://evil.example"), 403, "another site")
    assert call(team, "GET", "/api/whoami", "alice", Host="evil.example").status_code == 421
    alice = call(team, "GET", "/api/whoami", "alice").json()
    assert (alice["user_id"], alice["role"], alice["mode"], alice["can_write"], alice["project"]) == ("alice", "write", "team", True, P)
    carol = call(team, "GET", "/api/whoami", "carol").json()
    assert (carol["user_id"], carol["role"], carol["can_write"]) == ("carol", "read", False)


def test_each_token_sees_what_its_grant_covers(team):
    seen = {m["id"] for m in call(team, "GET", "/api/memories", "carol").json()["memories"]}
    assert team.fact in seen and team.mine not in seen  # the project's memory, not alice's own
    assert team.mine in {m["id"] for m in call(team, "GET", "/api/memories", "alice").json()["memories"]}
    refused(call(team, "GET", f"/api/memory/{team.fact}", "eve"), 404, "no memory")
    assert team.fact not in {m["id"] for m in call(team, "GET", "/api/memories", "eve").json()["memories"]}
    refused(call(team, "GET", "/api/preview", "eve", **{"X-Headroom-Project": P}), 403, "does not cover project")
    refused(call(team, "GET", "/api/preview", "eve", params={"project": P}), 403, "does not cover project")  # asked by the page
    refused(call(team, "GET", "/api/search", "eve", params={"q": "which port?", "project": P}), 403, "does not cover project")


def test_a_read_only_token_changes_nothing(team):
    before = stored(team)
    for path, body in ((f"/api/memory/{team.fact}/edit", {"content": "the atlas API listens on port 9090"}),
                       (f"/api/memory/{team.fact}/forget", {}), (f"/api/memory/{team.fact}/update", {"importance": 0.1}),
                       ("/api/restore", {"ids": [team.fact]}), ("/api/unmerge", {"id": team.fact})):
        refused(call(team, "POST", path, "carol", body), 403, "read-only")
    assert call(team, "GET", "/api/forgotten", "carol").json() == {"memories": []}
    assert stored(team) == before


def test_the_team_preview_is_what_the_team_hook_gets(team, tmp_path):
    preview = call(team, "GET", "/api/preview", "carol").json()["session_start"]["text"]
    hook = subprocess.run([EXE, "hook", "session-start", "--agent", "codex", "--url", team.url, "--token-env", "T"],
                          input=json.dumps({"cwd": str(tmp_path)}), capture_output=True, text=True, timeout=120,
                          env={**os.environ, "T": team.token["carol"], "HEADROOM_MCP_DATA_DIR": str(tmp_path / "unused")})
    assert hook.returncode == 0, hook.stderr
    assert preview == json.loads(hook.stdout)["hookSpecificOutput"]["additionalContext"]
    assert "the atlas API listens on port 8080" in preview


def open_as(driver, team, user: str, page: str = "memories") -> None:
    driver.get("about:blank")
    driver.get(f"{team.base}/#token={team.token[user]}")
    wait(driver, lambda d: d.execute_script("const e = document.getElementById('who-user'); return e && e.textContent") == user)
    if page != "memories":
        driver.get(f"{team.base}/#/{page}")


def test_a_writer_sees_the_fixes_and_they_act_as_its_token(team, browser):
    with SyncMemory(user_id="alice", project=P, agent_id="claude", data_dir=team.data_dir) as alice:
        old = alice.save("the atlas staging host is stage1.acme.internal")["id"]
    open_as(browser, team, "alice", f"memory/{old}")
    wait(browser, shown("#detail-content"))
    assert browser.find_element(By.ID, "who-role").text == "write" and "token" not in browser.current_url
    browser.find_element(By.ID, "edit-open").click()
    area = wait(browser, shown("#edit-text"))
    area.clear()
    area.send_keys("the atlas staging host is stage2.acme.internal")
    browser.find_element(By.ID, "edit-save").click()
    wait(browser, lambda d: d.execute_script("return document.getElementById('detail-content').textContent")
         == "the atlas staging host is stage2.acme.internal")
    new = browser.current_url.rsplit("/", 1)[1]
    with SyncMemory(user_id="alice", project=P, data_dir=team.data_dir) as alice:
        assert (alice.get(old)["status"], alice.get(old)["superseded_by"]) == ("superseded", new)
        assert alice.get(new)["users"] == ["alice"] and alice.get(new)["project"] == P


def test_a_read_only_token_is_shown_no_fixes(team, browser):
    open_as(browser, team, "carol", f"memory/{team.fact}")
    wait(browser, shown("#detail-content"))
    assert browser.find_element(By.ID, "who-role").text == "read-only"
    assert "read-only" in browser.find_element(By.TAG_NAME, "body").get_attribute("class")
    for control in ("#edit-open", "#forget", "#tune-form", ".unmerge"):
        assert browser.find_elements(By.CSS_SELECTOR, control) == [], control
    browser.get(f"{team.base}/#/forgotten")
    wait(browser, lambda d: "read-only token" in d.find_element(By.ID, "forgotten-rows").text)


def test_signing_out_asks_for_a_token_again(team, browser):
    open_as(browser, team, "alice")
    browser.find_element(By.ID, "sign-out").click()
    field = wait(browser, shown("#login-token"))
    assert browser.execute_script("return sessionStorage.length") == 0
    field.send_keys(team.token["carol"], Keys.ENTER)
    wait(browser, lambda d: d.execute_script("const e = document.getElementById('who-user'); return e && e.textContent") == "carol")
