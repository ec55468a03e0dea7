"""Screenshots of the dashboard after `healctl demo`, for the README, taken with the browser tests' own tooling
(tests/browser.py: Debian's Chromium driven by Playwright). Run by `make screenshots`."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from daemon import config as configuration  # noqa: E402
from daemon import logs  # noqa: E402
from daemon.api import ApiServer, create_app  # noqa: E402
from daemon.capture import Capture  # noqa: E402
from daemon.compose import build  # noqa: E402
from daemon.metrics import Metrics  # noqa: E402
from tests import browser  # noqa: E402

PAGES = {"dashboard-overview.png": "/", "dashboard-model.png": "/ui/models/churn"}


def main(out: Path = ROOT / "docs" / "img") -> None:
    logs.configure("warning")
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "demo"
        healctl = Path(sys.executable).parent / "healctl"
        subprocess.run([str(healctl), "demo", "--json", "--state-dir", str(state)], check=True, capture_output=True)
        heald = build(configuration.load(state / "heald.toml"), pool="inline")
        capture, metrics = Capture(heald.settings.landing, lambda: heald.store), Metrics(heald.store, heald.registry)
        server = ApiServer(create_app(lambda: heald, capture, metrics), "127.0.0.1", 0)
        port = server.start()
        try:
            with browser.chromium() as chromium:
                for name, path in PAGES.items():
                    url = f"http://127.0.0.1:{port}{path}"
                    with browser.visit(chromium, url, allowed_host=f"127.0.0.1:{port}") as seen:
                        browser.screenshot(seen, out / name)
                    print(f"wrote {out / name}")
        finally:
            server.stop()
            heald.close()


if __name__ == "__main__":
    main()
