"""Open driftd's live page in headless Chromium and report what it shows.

Usage: python live_page.py URL SCREENSHOT.png [--refresh]

Drives Debian's Chromium (/usr/bin/chromium, or $CHROMIUM) through
Playwright and prints one JSON object on stdout: the console messages and
page errors, every request the page made (so a test can assert none left the
daemon), the failed ones, any dialog a script opened, and what the page
rendered per model; with --refresh, also whether its own refresh 10 s later
draws the same. The caller asserts on it; this script only fails when the
page cannot be loaded.
"""

import json
import os
import sys
import urllib.parse

from playwright.sync_api import sync_playwright

# Chromium as the probe of this machine starts it: no background networking,
# which the closed network here refuses.
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def main() -> None:
    url, screenshot = sys.argv[1], sys.argv[2]
    wait_refresh = "--refresh" in sys.argv[3:]
    origin = urllib.parse.urlsplit(url)
    console, errors, requests, failed, dialogs = [], [], [], [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"),
            args=ARGS,
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on(
            "console",
            lambda m: console.append({"type": m.type, "text": m.text}),
        )
        page.on("pageerror", lambda e: errors.append(str(e)))
        # A script injected through a model name would show itself here.
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.on("request", lambda r: requests.append(r.url))
        page.on(
            "requestfailed",
            lambda r: failed.append({"url": r.url, "error": r.failure}),
        )
        page.on(
            "response",
            lambda r: r.status >= 400
            and failed.append({"url": r.url, "error": f"HTTP {r.status}"}),
        )
        response = page.goto(url, wait_until="load")
        page.wait_for_selector("body[data-loaded=true]", timeout=30_000)

        def rendered():
            return page.eval_on_selector_all(
                "section.model",
                """sections => sections.map(s => ({
                    model: s.dataset.model,
                    failed: s.dataset.failed === 'true',
                    heading: s.querySelector('h2').innerText,
                    versions: [...s.querySelectorAll('table.versions tbody tr')]
                        .map(r => r.innerText.replace(/\\s+/g, ' ').trim()),
                    candidate: s.querySelector('p.candidate')?.innerText ?? null,
                    windows: s.querySelectorAll('table.windows tbody tr').length,
                    heatmap_features: [...new Set([...s.querySelectorAll('svg.heatmap rect.cell')]
                        .map(r => r.dataset.feature))],
                    heatmap_cells: s.querySelectorAll('svg.heatmap rect.cell').length,
                    heatmap_drift_cells: [...s.querySelectorAll('svg.heatmap rect.cell[data-drift=true]')]
                        .map(r => r.dataset.feature),
                    charts: [...s.querySelectorAll('.chart')].map(c => ({
                        title: c.querySelector('h4').innerText,
                        points: c.querySelectorAll('circle').length,
                        lines: c.querySelectorAll('path.series').length,
                    })),
                    data_quality: [...s.querySelectorAll('table.quality tbody tr')]
                        .map(r => ({feature: r.dataset.feature,
                                    flagged: [...r.querySelectorAll('td:last-child .badge')]
                                        .map(b => b.innerText)})),
                    new_features: s.querySelector('p.new-features')?.innerText ?? null,
                    decisions: [...s.querySelectorAll('table.decisions tbody tr')]
                        .map(r => r.innerText.replace(/\\s+/g, ' ').trim()),
                }))""",
        )

        models = rendered()
        refreshed_same = None
        if wait_refresh:
            # The page's own refresh (every 10 s): the status line's time
            # changes, and it draws the same (the data did not change).
            before = page.inner_text("#status")
            page.wait_for_function(
                "before => document.getElementById('status').innerText !== before",
                arg=before,
                timeout=30_000,
            )

            def stable(ms):  # "last event N s ago" moves on
                return [{k: v for k, v in m.items() if k != "heading"} for m in ms]
            refreshed_same = stable(rendered()) == stable(models)
        page.screenshot(path=screenshot, full_page=True)
        report = {
            "status": response.status if response else None,
            "csp": (response.headers.get("content-security-policy") if response else None),
            "title": page.title(),
            "status_line": page.inner_text("#status"),
            "main_text": page.inner_text("main"),
            "console": console,
            "page_errors": errors,
            "requests": requests,
            "failed": failed,
            "foreign_requests": [
                r for r in requests
                if urllib.parse.urlsplit(r).netloc != origin.netloc
                and not r.startswith("data:")
            ],
            "dialogs": dialogs,
            "models": models,
            "refreshed_same": refreshed_same,
        }
        browser.close()
    json.dump(report, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
