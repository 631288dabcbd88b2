"""Patient view in a real browser against the real app (service, Redis, model)."""

from __future__ import annotations

import pytest

from chatdoc.tools.harness import consent, open_patient, send_timed
from tests.ui.conftest import shot

pytestmark = pytest.mark.slow

EMERGENCY = "crushing chest pain spreading to my left arm and I'm sweating"


def _bot_texts(page) -> list[str]:
    return page.eval_on_selector_all("#chat [data-testid=bot]", "els => els.map(e => e.innerText.trim())")


def test_consent_three_turns_end_shows_summary(ui_app, new_page):
    page = new_page()
    open_patient(page, ui_app.base)
    notice = page.inner_text("#consent-notice")
    assert len(notice) > 40
    assert not page.is_visible("#msg-input")  # nothing to type into before consent
    shot(page, "patient_consent")
    consent(page)
    assert _bot_texts(page), "greeting expected after consent"
    for text in ("I have had a sore throat for three days", "It hurts when I swallow", "No fever, no rash"):
        t = send_timed(page, text)
        assert t["first_token_ms"] <= t["full_reply_ms"]
        assert not page.query_selector("#patient-error"), page.inner_text("#patient-notice")
    users = page.eval_on_selector_all("#chat [data-testid=user]", "els => els.map(e => e.innerText.trim())")
    assert users[-1] == "No fever, no rash"
    assert len(_bot_texts(page)) >= 4
    shot(page, "patient_chat")
    page.click("#end-btn")
    page.wait_for_selector("#lay-summary", timeout=180_000)
    assert len(page.inner_text("#lay-summary")) > 30
    assert page.is_disabled("#send-btn")
    shot(page, "patient_summary")


def test_emergency_message_shows_banner_first(ui_app, new_page):
    page = new_page()
    open_patient(page, ui_app.base)
    consent(page)
    send_timed(page, EMERGENCY)
    banner = page.wait_for_selector("#triage-banner", state="visible", timeout=60_000)
    box = banner.bounding_box()
    assert box["height"] > 40 and box["width"] > 300
    color = page.eval_on_selector("#triage-banner", "e => getComputedStyle(e).backgroundColor")
    assert color.replace(" ", "") == "rgb(176,0,32)"
    # the banner sits above the conversation
    chat_box = page.query_selector("#chat").bounding_box()
    assert box["y"] < chat_box["y"]
    assert len(page.inner_text("#triage-banner")) > 20
    shot(page, "patient_emergency_banner", full_page=False)


def test_resume_by_link_and_code(ui_app, new_page):
    page = new_page()
    open_patient(page, ui_app.base)
    consent(page)
    send_timed(page, "I keep getting headaches in the morning")
    link = page.get_attribute("#resume-link", "href")
    code = page.inner_text("#resume-code").strip()
    assert link.endswith(f"?session={code}") and len(code) >= 22  # >= 128 bits in url-safe base64
    page.context.close()  # "close the browser"

    page2 = new_page()
    page2.goto(link)
    page2.wait_for_selector("#resume-ok", timeout=60_000)
    users = page2.eval_on_selector_all("#chat [data-testid=user]", "els => els.map(e => e.innerText.trim())")
    assert "I keep getting headaches in the morning" in users
    send_timed(page2, "They last about two hours")
    shot(page2, "patient_resumed")

    page3 = new_page()
    open_patient(page3, ui_app.base)
    page3.click("text=Continue an earlier conversation")
    page3.fill("#resume-input input", code)
    page3.click("#resume-btn")
    page3.wait_for_selector("#resume-ok", timeout=60_000)
    assert "They last about two hours" in page3.inner_text("#chat")

    page4 = new_page()
    page4.goto(ui_app.base + "/?session=" + "A" * 32)
    page4.wait_for_selector("#patient-error", timeout=60_000)
    assert "could not find" in page4.inner_text("#patient-error").lower()


def test_input_limits_show_a_clear_message(ui_app, new_page):
    page = new_page()
    open_patient(page, ui_app.base)
    consent(page)
    page.fill("#msg-input textarea", "   ")
    page.click("#send-btn")
    page.wait_for_selector("#patient-error")
    assert "type a message" in page.inner_text("#patient-error").lower()
    page.fill("#msg-input textarea", "x" * 2500)
    page.click("#send-btn")
    page.wait_for_function("() => (document.querySelector('#patient-error')||{}).innerText?.includes('too long')")
    assert "2,000" in page.inner_text("#patient-error")
    assert "Traceback" not in page.inner_text("body")
    assert page.eval_on_selector_all("#chat [data-testid=user]", "els => els.length") == 0


def test_phone_width_is_usable(ui_app, new_page):
    page = new_page(width=390, height=844)
    open_patient(page, ui_app.base)
    shot(page, "patient_phone_consent")
    consent(page)
    send_timed(page, "I twisted my ankle yesterday")
    scroll_w = page.evaluate("() => document.documentElement.scrollWidth")
    assert scroll_w <= 392, f"horizontal scroll at phone width: {scroll_w}px"
    for sel in ("#msg-input textarea", "#send-btn", "#end-btn"):
        b = page.query_selector(sel).bounding_box()
        assert b["x"] >= 0 and b["x"] + b["width"] <= 391, sel
    shot(page, "patient_phone_chat")
