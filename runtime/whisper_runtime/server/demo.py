"""The live page at ``/demo/``: static HTML, CSS and JavaScript, served as they are (no build step).

The page is a client of the runtime's own public routes (the realtime WebSocket and the OpenAI transcription
route with ``stream=true``); it needs nothing else from the server. Browsers give the microphone only to
secure contexts: open it over HTTPS, or on ``localhost`` (``kubectl port-forward``).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from starlette.staticfiles import StaticFiles

ASSETS = Path(__file__).with_name("demo")
PATH = "/demo"


def install_demo_page(app: FastAPI) -> None:
    app.add_api_route(PATH, lambda: RedirectResponse(f"{PATH}/"), methods=["GET"], include_in_schema=False)
    app.mount(f"{PATH}/", StaticFiles(directory=ASSETS, html=True), name="demo")
