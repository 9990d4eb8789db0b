"""The dashboard in a real browser (Debian's Chromium, headless, driven by Playwright) over a real gateway:
after a burst of requests through several tiers, a fallback and errors, what the page shows equals what
the SQLite log holds, for the window and filters chosen; one request's trace opens; the lab view draws
the latest router and function-calling evaluations."""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from hybridlm.access.keys import KeyStore, default_keys_path
from hybridlm.demo.support import demo_file
from hybridlm.request_log import default_log_path
from tests.integration.commands import hybridlm, last_json
from tests.integration.servers import FaultyUpstream, Gateway, hybrid_config, start_faulty_upstream, start_gateway, stop

playwright = pytest.importorskip("playwright.sync_api")
CHROMIUM = os.environ.get("HYBRIDLM_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)")
MMLU = Path(__file__).parents[1] / "data" / "routellm" / "mmlu"
BFCL = Path(__file__).parents[1] / "data" / "tools" / "bfcl"


@dataclass
class Desk:
    gateway: Gateway
    upstream: FaultyUpstream
    admin_key: str
    fallback_id: str


def _ask(client: openai.OpenAI, model: str, text: str) -> str:
    return client.chat.completions.create(model=model, max_tokens=8,
                                          messages=[{"role": "user", "content": text}]).id


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    workdir = tmp_path_factory.mktemp("dashboard")
    upstream = start_faulty_upstream(workdir, reply="the cloud model answers")
    config = hybrid_config(upstream.base_url)
    config["support"] = {"kb_files": [str(demo_file("faq.yaml"))]}
    gateway = start_gateway(workdir, config)
    store = KeyStore(default_keys_path(gateway.data_dir))
    try:
        admin = store.create("ops", admin=True)[1]
    finally:
        store.close()
    try:
        with openai.OpenAI(base_url=gateway.base_url, api_key=admin, max_retries=0) as client:
            for text in ("hi", "What time is it?"):
                _ask(client, "slm", text)
            _ask(client, "llm", "Explain the theory of relativity")
            _ask(client, "hybrid/support", "How do I activate my new card?")
            _ask(client, "hybrid/support", "This is UNACCEPTABLE, you LOST my card and did NOTHING!!!")
            stream = client.chat.completions.create(model="slm", max_tokens=4, stream=True,
                                                    messages=[{"role": "user", "content": "hello"}])
            list(stream)
            upstream.set_fault("http_500")
            fallback_id = _ask(client, "hybrid/support", "I am FURIOUS, nobody answers my calls, this is a disgrace!!!")
            with pytest.raises(openai.NotFoundError):
                _ask(client, "no-such-model", "hi")
            with pytest.raises(openai.InternalServerError):
                _ask(client, "llm", "forced to a failing cloud: an error, no fallback")
        evaluation = hybridlm("eval", "router", "--data", str(MMLU), "--kinds", "knn,random", "--folds", "3", "--json",
                              "--report", str(workdir / "report"), data_dir=gateway.data_dir)
        last_json(evaluation)
        bfcl = hybridlm("eval", "tools", "--data", str(BFCL), "--categories", "simple_python", "--limit", "1",
                        "--local-only", "--model", "smollm2-135m", "--report", str(workdir / "report"), "--json",
                        data_dir=gateway.data_dir)
        assert last_json(bfcl)["categories"]["simple_python"]["n"] == 1
        yield Desk(gateway, upstream, admin, fallback_id)
    finally:
        stop(gateway.proc)
        stop(upstream.proc)


def _sql(desk: Desk, query: str, *params: Any) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(default_log_path(desk.gateway.data_dir))
    try:
        return [tuple(r) for r in db.execute(query, params)]
    finally:
        db.close()


def _lane_counts(desk: Desk, since: float, until: float, tier: str | None = None) -> dict[str, int]:
    rows = _sql(desk, "SELECT CASE WHEN fallback IS NOT NULL THEN 'fallback' ELSE COALESCE(tier, 'refused') END, "
                      "COUNT(*) FROM requests WHERE ts BETWEEN ? AND ? AND (? IS NULL OR tier = ?) GROUP BY 1",
                since, until, tier, tier)
    return {lane: n for lane, n in rows}


def _shown(page: Any) -> dict[str, Any]:
    """What the page shows: the cards' values, the lanes table and the window's start."""
    cards = {card.get_attribute("id").removeprefix("card-"): float(card.get_attribute("data-value"))
             for card in page.locator(".card").all()}
    lanes = {row.get_attribute("data-lane"): int(row.locator("td.n").inner_text())
             for row in page.locator("#lanes tbody tr").all()}
    window = page.locator("#since")
    return {"cards": cards, "lanes": lanes, "since": float(window.get_attribute("data-since")),
            "until": float(window.get_attribute("data-until"))}


def _reloaded(page: Any, action: Any) -> None:
    before = page.locator("body").get_attribute("data-loaded")
    action()
    page.wait_for_function(f"document.body.dataset.loaded && document.body.dataset.loaded !== '{before}'")


def _matches_log(desk: Desk, shown: dict[str, Any], tier: str | None = None) -> None:
    since, until = shown["since"], shown["until"]
    (requests, errors, fallbacks, cost, baseline), = _sql(
        desk, "SELECT COUNT(*), SUM(status != 'ok'), SUM(fallback IS NOT NULL), SUM(cost_usd), SUM(baseline_cost_usd) "
              "FROM requests WHERE ts BETWEEN ? AND ? AND (? IS NULL OR tier = ?)", since, until, tier, tier)
    cards = shown["cards"]
    assert (cards["requests"], cards["errors"], cards["fallbacks"]) == (requests, errors, fallbacks)
    assert cards["cost"] == pytest.approx(cost) and cards["baseline"] == pytest.approx(baseline)
    assert cards["saved"] == pytest.approx(baseline - cost)
    assert shown["lanes"] == _lane_counts(desk, since, until, tier)


def test_the_dashboard_shows_what_the_log_holds(desk: Desk, tmp_path: Path) -> None:
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            context = browser.new_context(http_credentials={"username": "ops", "password": desk.admin_key, "send": "always"},
                                          viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            page.goto(desk.gateway.url + "/dashboard")
            page.wait_for_function("document.body.dataset.loaded")
            shown = _shown(page)
            assert shown["cards"]["requests"] >= 9 and shown["cards"]["fallbacks"] >= 1 and shown["cards"]["errors"] >= 2
            assert {"slm", "llm", "faq", "fallback", "refused"} <= set(shown["lanes"])
            _matches_log(desk, shown)
            assert page.locator("#errors tr[data-code='model_not_found']").count() == 1
            page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)

            _reloaded(page, lambda: page.select_option("#f-window", "1h"))
            hour = _shown(page)
            assert hour["since"] > shown["since"]  # a shorter window starts later, in minute buckets
            _matches_log(desk, hour)

            _reloaded(page, lambda: page.select_option("#f-tier", "slm"))
            only_slm = _shown(page)
            _matches_log(desk, only_slm, tier="slm")
            assert set(only_slm["lanes"]) <= {"slm", "fallback"}
            _reloaded(page, lambda: page.select_option("#f-tier", ""))

            page.locator(f"#recent tr[data-request-id='{desk.fallback_id}']").click()
            dialog = page.locator("#trace")
            dialog.wait_for(state="visible")
            text = dialog.inner_text()
            row, = _sql(desk, "SELECT fallback, tier, routed_tier FROM requests WHERE request_id = ?", desk.fallback_id)
            assert desk.fallback_id in text and "Calls" in text and "Signals" in text
            assert row[0] in text and "negative_sentiment" in text  # why it escalated, and why it fell back
            page.screenshot(path=str(tmp_path / "trace.png"))
            page.locator("#trace-close").click()

            page.locator("#tab-lab").click()
            page.locator("#lab figure[data-result='router-mmlu'] canvas").first.wait_for(state="visible")
            assert "APGR" in page.locator("#lab").inner_text()
            tools = page.locator("#lab figure[data-result='tools-bfcl']")
            assert tools.locator("canvas").count() == 1 and "smollm2-135m" in tools.inner_text()
            page.screenshot(path=str(tmp_path / "lab.png"), full_page=True)
        finally:
            browser.close()
    assert (tmp_path / "dashboard.png").stat().st_size > 20_000


def test_the_dashboard_asks_a_browser_for_the_admin_key(desk: Desk) -> None:
    refused = httpx.get(desk.gateway.url + "/dashboard/api/overview")
    assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Basic ")
    assert refused.json()["error"]["code"] == "invalid_api_key"
    basic = httpx.get(desk.gateway.url + "/dashboard/api/overview", auth=("anyone", desk.admin_key))
    assert basic.status_code == 200 and basic.json()["totals"]["requests"] >= 9
    bad_window = httpx.get(desk.gateway.url + "/dashboard/api/overview?window=2y", auth=("anyone", desk.admin_key))
    assert bad_window.status_code == 400 and bad_window.json()["error"]["param"] == "window"
    missing = httpx.get(desk.gateway.url + "/dashboard/api/requests/chatcmpl-nope", auth=("anyone", desk.admin_key))
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
