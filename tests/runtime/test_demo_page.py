"""The live page in a real headless Chromium (Debian's package, driven by Playwright) against the real server.

Chromium's fake microphone plays an espeak recording; the page streams it over the realtime WebSocket and must
show the words (WER bound), partial text first and the final after it, and the server must hear all of the speech
(its length, from the VAD's events). A file chosen on the page is uploaded
with stream=true and its text shown.
"""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest
from runtime_samples import SERVER_API_KEY
from whisper_devkit import speech
from whisper_devkit.wer import word_error_rate

pytestmark = pytest.mark.model

CHROMIUM = "/usr/bin/chromium"
#: The page may lose at most this much WER against the same recording uploaded as a file. tiny.en is poor on these
#: espeak sentences either way: 0.18-0.29 uploaded, 0.29-0.36 through Chromium's fake microphone; CI runs on 2 busy
#: cores lost 0.105 and 0.158. A page that sends the wrong rate loses more (0.26 for 24 kHz read as 16 kHz, measured
#: on the same text); finer faults (one 100 ms chunk in ten dropped loses 0.105) show in the length of the speech heard.
MICROPHONE_WER_MARGIN = 0.25
#: The server must hear the speech last as long as it was spoken (first speech_started to last speech_stopped, 13.6 s
#: against 13.65 s measured): a page that loses one 100 ms chunk in ten is 1.4 s short, a wrong rate 4.5 s or more off.
HEARD_SPEECH_TOLERANCE_SECONDS = 0.7
JFK_WER_BOUND = 0.10
LEAD_SECONDS, TRAILING_SECONDS = 1.0, 3.0


@pytest.fixture(scope="module")
def microphone_speech(tmp_path_factory):
    """Four espeak sentences, joined without a pause (one utterance for the VAD), with silence before and after."""
    folder = tmp_path_factory.mktemp("microphone")
    joined = speech.join_clips(speech.espeak_corpus("en")[:4], folder / "joined.wav", gap_seconds=0.01)
    padded = folder / "microphone.wav"
    subprocess.run(["sox", str(joined.path), str(padded), "pad", str(LEAD_SECONDS), str(TRAILING_SECONDS)], check=True)
    return speech.Utterance(padded, joined.text, "en", joined.duration + LEAD_SECONDS + TRAILING_SECONDS)


@pytest.fixture(scope="module")
def browser(microphone_speech):
    if shutil.which(CHROMIUM) is None:
        pytest.fail("Debian's chromium is missing: run `make system-packages`")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={microphone_speech.path}%noloop",
                "--autoplay-policy=no-user-gesture-required",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    page = browser.new_page()
    page.goto(f"{server.http_url}/demo")
    yield page
    page.close()


def test_the_microphone_streams_and_the_page_shows_partial_then_final_text(page, microphone_speech, http):
    page.click("#mic")
    page.wait_for_function("document.getElementById('mic-status').textContent === 'listening'", timeout=30_000)
    # The recording plays once; then every utterance it held must turn final.
    time.sleep(microphone_speech.duration)
    page.wait_for_function(
        "(() => { const lines = [...document.querySelectorAll('#live p')];"
        " return lines.length > 0 && lines.every((line) => line.dataset.finalAt); })()",
        timeout=180_000,
    )
    lines = page.eval_on_selector_all(
        "#live p",
        "lines => lines.map(l => ({text: l.textContent, partialAt: l.dataset.partialAt, finalAt: l.dataset.finalAt,"
        " start: l.dataset.speechStartMs, end: l.dataset.speechEndMs}))",
    )
    heard_seconds = (float(lines[-1]["end"]) - float(lines[0]["start"])) / 1000
    spoken_seconds = microphone_speech.duration - LEAD_SECONDS - TRAILING_SECONDS
    assert abs(heard_seconds - spoken_seconds) <= HEARD_SPEECH_TOLERANCE_SECONDS, (heard_seconds, spoken_seconds)
    shown = " ".join(line["text"] for line in lines)
    print(f"page, microphone: {shown!r} ({len(lines)} utterance(s))")
    uploaded = http.post("/v1/audio/transcriptions", data={"model": "whisper"},
                         files={"file": microphone_speech.path.read_bytes()}).json()["text"]  # fmt: skip
    uploaded_wer = word_error_rate([microphone_speech.text], [uploaded])
    assert word_error_rate([microphone_speech.text], [shown]) <= uploaded_wer + MICROPHONE_WER_MARGIN, uploaded
    with_partials = [line for line in lines if line["partialAt"]]
    assert with_partials, "no partial text appeared while the recording played"
    assert all(float(line["partialAt"]) < float(line["finalAt"]) for line in with_partials)
    assert page.get_attribute("#live p", "class") == "final"


def test_a_chosen_file_is_transcribed_with_streamed_deltas(page):
    jfk = speech.jfk()
    page.set_input_files("#file", str(jfk.path))
    page.wait_for_selector("#file-text[data-done]", timeout=120_000)
    assert word_error_rate([jfk.text], [page.text_content("#file-text")]) <= JFK_WER_BOUND
    assert int(page.get_attribute("#file-text", "data-deltas")) >= 1
    assert page.text_content("#file-status") == "jfk.wav: done"


def test_on_a_server_with_an_api_key_the_page_takes_the_key(browser, keyed_server):
    """Without the key the page says why nothing works; with it typed in, the microphone connects (the key as a
    WebSocket subprotocol) and a file is transcribed (the key as a Bearer header)."""
    jfk = speech.jfk()
    for key in ("", SERVER_API_KEY):
        page = browser.new_page()
        page.goto(f"{keyed_server.http_url}/demo")
        page.fill("#api-key", key)
        page.click("#mic")
        listening = "listening" if key else "could not connect: is the API key right?"
        page.wait_for_function(f"document.getElementById('mic-status').textContent === {listening!r}", timeout=30_000)
        if key:
            page.click("#mic")
        page.set_input_files("#file", str(jfk.path))
        page.wait_for_function("/done|API key/.test(document.getElementById('file-status').textContent)", timeout=120_000)
        if key:
            assert page.text_content("#file-status") == "jfk.wav: done"
            assert word_error_rate([jfk.text], [page.text_content("#file-text")]) <= JFK_WER_BOUND
        else:
            assert "needs an API key" in page.text_content("#file-status")
        page.close()
