"""Screenshots of the counts report and Splink's charts in headless Chromium, offline.

Not part of CI (it needs Chromium: ``apt-get install -y chromium``). Runs ``simlink demo`` on
synthetic people, then a tiny protected release (almost everything suppressed), and opens
each page with the network cut off (every host resolves to nothing, proxy to a dead port), so
a page that needs a CDN renders blank. PNGs go to benchmarks/results/screenshots/; look at
them. Usage: python benchmarks/report_screenshots.py [people]
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from simlink.counts import release, write_report
from simlink.demo import run_demo

OUT = Path(__file__).parent / "results" / "screenshots"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--no-first-run", "--hide-scrollbars", "--host-resolver-rules=MAP * ~NOTFOUND",
         "--proxy-server=127.0.0.1:9", "--virtual-time-budget=5000"]


def shoot(page: Path, png: Path, width: int, height: int) -> dict:
    """Screenshot ``page``; crop the white below the content; report how much is drawn."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise SystemExit("chromium not found: apt-get install -y chromium")
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}",
                        f"--window-size={width},{height}", f"--screenshot={png}",
                        page.resolve().as_uri()], check=True, capture_output=True, timeout=120)
    grey = np.asarray(Image.open(png).convert("L"))
    rows = np.where(grey.min(axis=1) < 250)[0]
    bottom = int(rows.max()) + 20 if rows.size else 10
    page_png = Image.open(png).convert("RGB").crop((0, 0, grey.shape[1], min(bottom, grey.shape[0])))
    page_png.quantize(colors=128).save(png, optimize=True)  # small enough to keep in git
    inked = float((grey[:bottom] < 250).mean())
    return {"page": str(page.name), "png": png.name, "height_px": bottom,
            "inked_share": round(inked, 4)}


def tiny_release(folder: Path) -> Path:
    """Six people from the test suite's hand-built linkage: nearly every cell suppressed."""
    sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
    from test_counts import events_frame, write_linkage  # noqa: PLC0415

    db = write_linkage(folder / "tiny.duckdb", events_frame())
    return write_report(release(db), folder / "tiny_report")


def main(people: int) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        result = run_demo(work / "demo", people=people, seed=2026, errors="medium",
                          overwrite=True, say=lambda _: None)
        charts = work / "demo" / "linkage.duckdb.charts"
        rows = [shoot(result.report, OUT / "report_demo.png", 1100, 8000),
                shoot(result.report, OUT / "report_demo_narrow.png", 420, 2400),
                shoot(tiny_release(work), OUT / "report_tiny.png", 1100, 8000)]
        for page in sorted(charts.glob("*.html")):
            rows.append(shoot(page, OUT / f"splink_{page.stem}.png", 1000, 900))
    for row in rows:
        print(row)
    print(f"wrote {len(rows)} screenshots to {OUT}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1500)
