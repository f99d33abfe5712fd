"""The memory browser in a real headless Chromium: a real ``headroom-mcp ui`` over a real
daemon, the page driven as a person would (clicks, typing, the keyboard), every change
checked through the store itself. One browser serves the whole module."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from test_server import EXE
from ui_browser import screenshot_dir, shown, start_browser, viewport, wait
from ui_server import XSS, P, UiServer, local_store, store_env

from headroom_mcp.api import SyncMemory


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    with local_store(tmp_path_factory.mktemp("ui-browser")) as data_dir:
        with SyncMemory(agent_id="claude") as claude, SyncMemory(agent_id="codex") as codex:
            ids = {"uv": claude.save("this repo uses uv, not pip", tags=["tooling"])["id"]}
            ids["restated"] = codex.save("The repository uses uv instead of pip.")["restatement"]
            ids["port"] = codex.save("the API listens on port 8080", importance=0.8)["id"]
            ids["tabs"] = claude.save("prefer tabs over spaces in Makefiles", scope="user")["id"]
            ids["xss"] = claude.save(XSS)["id"]
            ids["vite"] = claude.save("the frontend is built with vite")["id"]
            kept = codex.save("The frontend uses vite to build.")  # a merge that stays (the charts count it)
            assert kept["status"] == "merged", kept
        with UiServer(data_dir, {}) as server:
            server.ids = ids
            yield server


@pytest.fixture(scope="module")
def browser(ui):
    driver = start_browser()
    driver.get(ui.url)
    try:
        yield driver
    finally:
        driver.quit()


def css(driver, selector: str):
    return driver.find_elements(By.CSS_SELECTOR, selector)


def row_ids(driver, list_id: str = "rows") -> list[str]:
    """The ids of the rows shown, read in one step (the list may be redrawn at any moment)."""
    return driver.execute_script(f"return [...document.querySelectorAll('#{list_id} .row')].map((r) => r.dataset.id)")


def text_of(driver, selector: str) -> str:
    """The text of the first element matching ``selector`` ("" when there is none), read in one step."""
    return driver.execute_script("const e = document.querySelector(arguments[0]); return e ? e.innerText : ''", selector)


def go(driver, ui, page: str) -> None:
    """Load a page of the app afresh (``memories``, ``memory/ID``...) and wait until it has started."""
    driver.get("about:blank")  # else only the fragment changes, and the page keeps what was typed
    driver.get(f"{ui.base}/#/{page}")
    wait(driver, lambda d: d.execute_script("return !!document.querySelector('#who .user')"), "the page did not start")


def open_memory(driver, ui, memory_id: str):
    go(driver, ui, f"memory/{memory_id}")
    return wait(driver, shown("#detail-content"), "the memory did not open")


def memory(memory_id: str) -> dict:
    with SyncMemory() as m:
        return m.get(memory_id)


def test_the_token_leaves_the_address_bar_and_the_list_shows(ui, browser):
    browser.get(ui.url)
    wait(browser, lambda d: len(row_ids(d)) >= 4, "no rows")
    assert "token" not in browser.current_url and browser.current_url.endswith("#/memories")
    assert browser.execute_script("return sessionStorage.getItem('headroom-mcp-token')") == ui.token
    assert css(browser, "#who-user")[0].text == "alice" and css(browser, "#who-role")[0].text == "admin"
    assert set(row_ids(browser)) >= {ui.ids["uv"], ui.ids["port"], ui.ids["tabs"], ui.ids["xss"]}


def test_without_the_token_the_page_asks_for_it(ui, browser):
    browser.execute_script("sessionStorage.clear()")
    browser.get(ui.base + "/")
    field = wait(browser, shown("#login-token"), "no token field")
    assert not css(browser, "#page-memories")[0].is_displayed()
    assert not css(browser, "#notice")[0].is_displayed()
    field.send_keys("not-the-token", Keys.ENTER)
    notice = wait(browser, shown("#notice"), "a wrong token was not refused")
    assert "needs the token from the URL" in notice.text and css(browser, "#login-token")[0].is_displayed()
    css(browser, "#login-token")[0].send_keys(ui.token, Keys.ENTER)
    wait(browser, lambda d: len(row_ids(d)) >= 4, "the pasted token did not open the list")
    assert not css(browser, "#notice")[0].is_displayed()


def test_memory_text_is_shown_as_text_and_never_run(ui, browser):
    go(browser, ui, "memories")
    wait(browser, lambda d: ui.ids["xss"] in row_ids(d))
    row = css(browser, f'.row[data-id="{ui.ids["xss"]}"] .content')[0]
    assert row.text == XSS
    assert css(browser, "#rows img, #rows script, #rows a") == []
    open_memory(browser, ui, ui.ids["xss"])
    assert css(browser, "#detail-content")[0].text == XSS and css(browser, "#detail img, #detail-body script") == []
    go(browser, ui, "agent")
    text = wait(browser, shown("#hook-session-text")).text
    assert "‹img src=x" in text and css(browser, "#preview-out img") == []
    assert browser.execute_script("return window.__pwned") is None


def test_search_by_words_and_by_meaning_with_scores(ui, browser):
    go(browser, ui, "memories")
    box = wait(browser, shown("#q"))
    box.send_keys("port 8080")
    wait(browser, lambda d: row_ids(d) == [ui.ids["port"]], "the word filter did not narrow the list")
    box.clear()
    css(browser, "#mode option[value=meaning]")[0].click()
    box.send_keys("which package manager does this repo use?", Keys.ENTER)
    wait(browser, lambda d: css(d, "#rows .row .score"), "no scored results")
    assert row_ids(browser)[0] == ui.ids["uv"]
    assert css(browser, "#rows .row .score")[0].text.startswith("score 0.")
    assert "best matches by meaning" in css(browser, "#count")[0].text


def test_the_keyboard_reaches_everything(ui, browser):
    go(browser, ui, "memories")
    wait(browser, lambda d: len(row_ids(d)) >= 4)
    ActionChains(browser).send_keys("/").perform()
    assert browser.switch_to.active_element.get_attribute("id") == "q"
    assert all(r.get_attribute("tabindex") == "0" for r in css(browser, "#rows .row"))
    browser.execute_script("document.querySelector('#rows .row').focus()")
    first, second = row_ids(browser)[:2]
    browser.switch_to.active_element.send_keys(Keys.ARROW_DOWN)
    assert browser.switch_to.active_element.get_attribute("data-id") == second
    browser.switch_to.active_element.send_keys(Keys.ARROW_UP)
    assert browser.switch_to.active_element.get_attribute("data-id") == first
    browser.switch_to.active_element.send_keys(Keys.ARROW_DOWN, Keys.ENTER)
    wait(browser, shown("#detail-content"), "Enter did not open the memory")
    assert css(browser, "#detail-content")[0].text == memory(second)["content"]
    browser.switch_to.active_element.send_keys(Keys.ESCAPE)
    wait(browser, lambda d: not d.execute_script("return document.getElementById('detail').open"), "Esc did not close it")
    assert browser.switch_to.active_element.get_attribute("data-id") == second  # focus back on its row
    assert browser.current_url.endswith("#/memories")


def test_edit_supersedes_the_old_memory(ui, browser):
    with SyncMemory(agent_id="claude") as m:
        old = m.save("CI runs on Jenkins", tags=["ci"])["id"]
    open_memory(browser, ui, old)
    css(browser, "#edit-open")[0].click()
    area = wait(browser, shown("#edit-text"))
    area.clear()
    area.send_keys("CI runs on GitHub Actions")
    css(browser, "#edit-save")[0].click()
    wait(browser, lambda d: text_of(d, "#detail-content") == "CI runs on GitHub Actions",
         "the new version did not open")
    new = browser.current_url.rsplit("/", 1)[1]
    assert new != old
    assert (memory(old)["status"], memory(old)["superseded_by"]) == ("superseded", new)
    assert (memory(new)["supersedes"], memory(new)["tags"]) == (old, ["ci"])
    assert "CI runs on Jenkins" in css(browser, "#detail-body .related")[0].text  # "Replaces" links the old one


def test_forget_then_undo_restores_it(ui, browser):
    with SyncMemory(agent_id="claude") as m:
        saved = m.save("the nightly build runs at 02:00 UTC")["id"]
    open_memory(browser, ui, saved)
    css(browser, "#forget")[0].click()
    undo = wait(browser, shown("#toast button"), "no Undo offered")
    assert memory(saved)["status"] == "forgotten"
    assert not browser.execute_script("return document.getElementById('detail').open")
    undo.click()
    wait(browser, lambda d: text_of(d, "#toast").startswith("Restored"), "Undo did not restore")
    assert memory(saved)["status"] == "active"
    wait(browser, lambda d: saved in row_ids(d), "the restored memory is not back in the list")


def test_importance_and_tags_are_changed_in_place(ui, browser):
    with SyncMemory(agent_id="claude") as m:
        saved = m.save("releases are cut from main", tags=["release"])["id"]
    open_memory(browser, ui, saved)
    browser.execute_script("const r = document.getElementById('tune-importance'); r.value = '0.85';"
                           "r.dispatchEvent(new Event('input'));")
    assert css(browser, "#tune-importance-value")[0].text == "0.85"
    tags = css(browser, "#tune-tags")[0]
    tags.clear()
    tags.send_keys("release, policy")
    css(browser, "#tune-save")[0].click()
    wait(browser, lambda d: text_of(d, "#toast").startswith("Importance and tags saved"))
    assert (memory(saved)["importance"], memory(saved)["tags"]) == (0.85, ["release", "policy"])
    wait(browser, lambda d: "#policy" in text_of(d, "#detail-body .facts"))


def test_saving_the_untouched_form_rewrites_no_value(ui, browser):
    """An importance off the slider's marks and a tag with a comma survive a save of the other field."""
    with SyncMemory(agent_id="claude") as m:
        saved = m.save("hotfixes skip the release train", importance=0.73, tags=["a,b", "x"])["id"]
    open_memory(browser, ui, saved)
    css(browser, "#tune-save")[0].click()
    wait(browser, lambda d: text_of(d, "#toast").startswith("Nothing changed"))
    assert (memory(saved)["importance"], memory(saved)["tags"]) == (0.73, ["a,b", "x"])
    browser.execute_script("const r = document.getElementById('tune-importance'); r.value = '0.4';"
                           "r.dispatchEvent(new Event('input'));")
    css(browser, "#tune-save")[0].click()
    wait(browser, lambda d: text_of(d, "#toast").startswith("Importance and tags saved"))
    assert (memory(saved)["importance"], memory(saved)["tags"]) == (0.4, ["a,b", "x"])


def test_bad_input_gets_the_servers_sentence_and_changes_nothing(ui, browser):
    with SyncMemory(agent_id="claude") as m:
        saved = m.save("the cache lives in redis")["id"]
    open_memory(browser, ui, saved)
    css(browser, "#edit-open")[0].click()
    browser.execute_script("document.getElementById('edit-text').value = 'x'.repeat(9000)")
    css(browser, "#edit-save")[0].click()
    notice = wait(browser, shown("#notice"), "no message for an oversized edit")
    assert "the limit is 8192" in notice.text
    assert (memory(saved)["status"], memory(saved)["content"]) == ("active", "the cache lives in redis")
    with SyncMemory(agent_id="codex") as m:  # meanwhile, an agent replaces it
        newer = m.save("the cache lives in memcached", supersedes=saved)["id"]
    css(browser, "#forget")[0].click()
    wait(browser, lambda d: f"superseded by {newer} since this page showed it" in text_of(d, "#notice"))
    assert memory(saved)["status"] == "superseded" and memory(newer)["status"] == "active"


def test_a_restatement_can_be_unmerged_from_the_page(ui, browser):
    open_memory(browser, ui, ui.ids["uv"])
    button = wait(browser, shown(f'.unmerge[data-id="{ui.ids["restated"]}"]'))
    button.click()
    wait(browser, lambda d: text_of(d, "#toast").startswith("Unmerged"))
    assert memory(ui.ids["restated"])["status"] == "active" and memory(ui.ids["uv"])["agents"] == ["claude"]


def test_the_forgotten_page_restores(ui, browser):
    with SyncMemory(agent_id="claude") as m:
        saved = m.save("the old VPN endpoint is vpn1.acme.internal")["id"]
        m.delete(id=saved)
    go(browser, ui, "forgotten")
    wait(browser, lambda d: saved in row_ids(d, "forgotten-rows"))
    assert "restorable until" in css(browser, f'#forgotten-rows .row[data-id="{saved}"]')[0].text
    css(browser, f'#forgotten-rows .row[data-id="{saved}"] .restore')[0].click()
    wait(browser, lambda d: saved not in row_ids(d, "forgotten-rows"))
    assert memory(saved)["status"] == "active"


def test_what_agents_see_is_the_hooks_own_output(ui, browser, tmp_path):
    go(browser, ui, "agent")
    wait(browser, shown("#hook-session-text"))
    css(browser, f'#p-project option[value="{P}"]')[0].click()
    agent = css(browser, "#p-agent")[0]
    agent.clear()
    agent.send_keys("codex")
    before = css(browser, "#hook-session-title")[0].text
    css(browser, "#preview button[type=submit]")[0].click()
    wait(browser, lambda d: text_of(d, "#hook-session-title") != before, "the preview did not refresh")
    shown_text = css(browser, "#hook-session-text")[0].get_attribute("textContent")
    hook = subprocess.run([EXE, "hook", "session-start", "--agent", "codex"], input=json.dumps({"cwd": str(tmp_path), "session_id": "t"}),
                          capture_output=True, text=True, env={**os.environ, **store_env(ui.data_dir)}, timeout=120)
    assert hook.returncode == 0, hook.stderr
    assert shown_text == json.loads(hook.stdout)["hookSpecificOutput"]["additionalContext"]
    assert "of 600 tokens (estimated)" in css(browser, "#page-agent .hook .muted")[0].text


def test_the_activity_page_draws_its_charts(ui, browser):
    go(browser, ui, "activity")
    wait(browser, lambda d: len(css(d, "figure.chart")) == 4, "no charts")
    first = css(browser, "figure.chart")[0]
    assert "by agent" in first.text and "claude" in first.text and first.find_elements(By.CSS_SELECTOR, "svg rect")
    assert css(browser, "figure.chart")[3].find_elements(By.CSS_SELECTOR, "svg rect")  # merges


SIZES = [(1280, 800), (400, 800)]


@pytest.mark.parametrize("width, height", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_every_page_fits_the_window_in_light_and_dark(ui, browser, tmp_path_factory, width, height, dark):
    """Screenshots of each page (kept where HEADROOM_MCP_UI_SCREENSHOTS says), and nothing wider than the window."""
    folder = screenshot_dir(tmp_path_factory)
    viewport(browser, width, height, dark)
    try:
        theme = "dark" if dark else "light"
        assert browser.execute_script("return matchMedia('(prefers-color-scheme: dark)').matches") is dark
        for page, ready in (("memories", "#rows .row"), (f"memory/{ui.ids['uv']}", "#detail-content"), ("agent", "#hook-session-text"),
                            ("activity", "figure.chart svg"), ("forgotten", "#forgotten-rows li")):
            go(browser, ui, page)
            wait(browser, shown(ready), f"{page} did not show")
            name = page.split("/")[0]
            path = folder / f"{name}-{width}x{height}-{theme}.png"
            assert browser.save_screenshot(str(path)) and path.stat().st_size > 5000
            overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{page} is {overflow}px wider than a {width}px window"
    finally:
        viewport(browser, 1280, 800, dark=False)
