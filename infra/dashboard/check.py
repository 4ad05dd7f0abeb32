#!/usr/bin/env python3
"""Loads the dashboard in headless Chromium and reports what a person would see.

Used by the integration test ``tests/tests/dashboard.rs`` (and runnable by hand)::

    .venv/bin/python infra/dashboard/check.py \\
        --url http://127.0.0.1:5077/_lifeboat/dashboard/ --screenshot target/dashboard/dashboard.png

Prints one JSON object: the page's final state (``ready`` / ``error`` / ``credentials``),
every console error and uncaught exception, failed requests, the timeline's lanes with
their recovery points, the rows of each table, the summary cards, and whether the page's
SigV4 signer reproduces AWS's published example. Exit status 0 when the report was
written, whatever it says: the test judges it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import ConsoleMessage, Error, sync_playwright

CHROMIUM = "/usr/bin/chromium"

# AWS Signature Version 4 test suite, case "get-vanilla" (credentials AKIDEXAMPLE).
SIGV4_EXAMPLE = {
    "url": "https://example.amazonaws.com/",
    "region": "us-east-1",
    "service": "service",
    "date": "2015-08-30T12:36:00Z",
    "accessKeyId": "AKIDEXAMPLE",
    "secretAccessKey": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    "signature": "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
}

READ_PAGE = """() => {
  const text = (e) => (e ? e.textContent.trim() : null);
  const rows = (id) => [...document.querySelectorAll(`#${id} tbody tr`)].map(
    (tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent.trim()));
  return {
    state: document.body.dataset.state,
    errors: text(document.getElementById('errors')),
    cards: [...document.querySelectorAll('#summary .card')].map((c) => ({
      title: text(c.querySelector('.card-title')), value: text(c.querySelector('.card-value')),
      kind: c.className.replace('card', '').trim()})),
    lanes: [...document.querySelectorAll('#timeline g.lane')].map((g) => ({
      resource: g.dataset.resource,
      points: [...g.querySelectorAll('circle.rp')].map((c) => ({
        id: c.dataset.id, kind: c.getAttribute('class').replace('rp', '').trim()}))})),
    compliance: rows('compliance'),
    storage: rows('storage'),
    drills: rows('drills'),
    alerts: rows('alerts'),
    failures: rows('failures'),
    audit: rows('audit'),
  };
}"""

SIGN_EXAMPLE = """async (x) => {
  const h = await window.lifeboatSigv4(x.url, x.region,
    {accessKeyId: x.accessKeyId, secretAccessKey: x.secretAccessKey}, new Date(x.date), x.service);
  return h.authorization;
}"""


def launch(p: Any, attempts: int = 3) -> Any:
    """Chromium, launched again when it dies while starting (it can crash in its zygote
    on a loaded machine); the page itself is never retried."""
    for attempt in range(1, attempts + 1):
        try:
            return p.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
            )
        except Error:
            if attempt == attempts:
                raise
            time.sleep(attempt)
    raise RuntimeError("unreachable")


def check(url: str, screenshot: Path, timeout_ms: int) -> dict[str, Any]:
    console_errors: list[str] = []
    failed_requests: list[str] = []
    with sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})

            def on_console(msg: ConsoleMessage) -> None:
                if msg.type == "error":
                    console_errors.append(msg.text)

            page.on("console", on_console)
            page.on("pageerror", lambda exc: console_errors.append(f"uncaught: {exc}"))
            page.on(
                "requestfailed",
                lambda req: failed_requests.append(f"{req.method} {req.url}: {req.failure}"),
            )
            page.on(
                "response",
                lambda r: failed_requests.append(f"{r.request.method} {r.url}: HTTP {r.status}")
                if r.status >= 400
                else None,
            )
            page.goto(url, wait_until="load", timeout=timeout_ms)
            # A selector, not a predicate: the page's CSP forbids eval, which
            # wait_for_function would need.
            page.wait_for_selector("body:not([data-state='loading'])", timeout=timeout_ms)
            seen = page.evaluate(READ_PAGE)
            authorization = page.evaluate(SIGN_EXAMPLE, SIGV4_EXAMPLE)
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return {
        **seen,
        "console_errors": console_errors,
        "failed_requests": failed_requests,
        "sigv4_example_ok": authorization.endswith(f"Signature={SIGV4_EXAMPLE['signature']}"),
        "sigv4_authorization": authorization,
        "screenshot": str(screenshot.resolve()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--screenshot", type=Path, required=True)
    parser.add_argument("--timeout-ms", type=int, default=60_000)
    args = parser.parse_args(argv)
    try:
        report = check(args.url, args.screenshot, args.timeout_ms)
    except Error as err:
        print(json.dumps({"state": "browser-failed", "error": str(err)}))
        return 0
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
