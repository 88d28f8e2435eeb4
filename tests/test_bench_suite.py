"""The benchmark suite's plumbing on tiny sizes: every section runs and the result files hold
the tables a reviewer reads, with sane values and the commit recorded."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> tuple[dict, str, Path]:
    out = tmp_path_factory.mktemp("suite")
    run = subprocess.run([sys.executable, "-m", "benchmarks", "--smoke", "--out", str(out), "--peers-python", "none"],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return (json.loads((out / "suite_smoke.json").read_text()), (out / "suite_smoke.md").read_text(), out)


def test_every_section_ran(smoke):
    doc, _, _ = smoke
    status = {name: entry["status"] for name, entry in doc["sections"].items()}
    assert status == {"quality": "ok", "peers": "skipped", "speed": "ok", "privacy": "ok", "counts": "ok"}, \
        {k: v.get("error") for k, v in doc["sections"].items()}


def test_provenance_recorded(smoke):
    doc, text, _ = smoke
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{40}", doc["git"]["commit"]) and doc["git"]["commit"] == head
    assert f"Commit `{head[:12]}`" in text
    assert doc["machine"]["cpus"] >= 1 and doc["versions"]["splink"] and doc["versions"]["duckdb"]
    assert len(doc["load_before"]) == 3 and len(doc["load_after"]) == 3
    assert doc["seeds"]["quality_synth"] == 7 and doc["wall_seconds"] > 0


def test_quality_values_are_sane(smoke):
    doc, _, _ = smoke
    (row,) = doc["sections"]["quality"]["result"]
    assert row["data"] == "synth-medium" and row["records"] > 300
    for method in ("simlink", "cleartext"):
        q = row[method]
        for key in ("pair_precision", "pair_recall", "pair_f1", "bcubed_precision", "bcubed_recall", "bcubed_f1"):
            assert 0.0 <= q[key] <= 1.0, (method, key, q[key])
        assert q["pair_f1"] > 0.8, (method, q["pair_f1"])  # 300 people, medium errors: both ~0.99 measured
        assert set(q["count_errors"]) == {"people", "people_2plus_services", "repeat_people"}
        assert all(abs(v) < 1 for v in q["count_errors"].values())
    assert row["true_counts"]["people"] > 0


def test_speed_privacy_counts_values(smoke):
    doc, _, _ = smoke
    speed = doc["sections"]["speed"]["result"]
    assert [r["contacts_target"] for r in speed["rows"]] == [2000]
    for r in speed["rows"]:
        assert 0.0 <= r["encoded"]["quality"]["f1"] <= 1.0
        assert r["encoded"]["counts"]["blocked_pairs"] > 0
        assert all(r[p]["peak_rss_mb"] > 0 for p in ("synth", "encode", "counts")) and r["encoded"]["peak_rss_mb"] > 0
        assert r["encode"]["records"] == r["encoded"]["events"]
    assert speed["slopes"] == {}  # one size: no slope to fit
    priv = doc["sections"]["privacy"]["result"]
    cell = priv["candidates"]["default"]["rows"][0]["given_name|all"]
    assert 0.0 <= cell["rate"] <= 1.0 and 0.0 <= cell["blind"] <= 1.0 and 0.0 <= cell["random"] <= 1.0
    (counts,) = doc["sections"]["counts"]["result"]
    assert counts["events"] == 5000 and counts["cells"] > 0


def test_markdown_tables_and_plots(smoke):
    doc, text, out = smoke
    for heading in ("## Linkage quality", "## Speed and memory by phase", "## Privacy: the linkage unit's attacks",
                    "## Disclosure control across releases"):
        assert heading in text
    assert "| synth-medium | " in text and "simlink (encoded)" in text and "cleartext Splink" in text
    assert "Peers skipped: skipped on request" in text
    for line in text.splitlines():  # every table row has as many cells as its header
        if line.startswith("|---"):
            assert line.count("|") == header.count("|"), header
        header = line
    assert sorted(doc["plots"]) == ["suite_smoke_attacks.png", "suite_smoke_f1.png", "suite_smoke_time.png"]
    for name in doc["plots"]:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_peers_pipeline_helpers():
    """benchmarks/peers.py runs in the peers' own Python; its pure parts are checked here."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import peers

    assert peers.components(5, [0, 3, 1], [1, 4, 0]) == [0, 0, 2, 3, 3]
    schema = peers.linkage_schema()
    assert schema["version"] == 3 and schema["clkConfig"]["l"] == 1024
    assert [f["identifier"] for f in schema["features"][1:]] == list(peers.FIELDS)


def test_fitted_slopes_recover_known_exponents():
    """The speed section's slopes on rows made with known exponents (pairs ~ n^1.5, time ~ n)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import suite_sections

    rows = [{"encoded": {"events": n, "counts": {"blocked_pairs": 3 * n ** 1.5}, "seconds": {"link": n / 1e4},
                         "peak_rss_mb": 100.0},
             "encode": {"seconds": 2 * n / 1e5}, "cleartext": {"seconds": {"train": 5.0, "predict": n / 1e3}}}
            for n in (10_000, 100_000, 1_000_000)]
    slopes = suite_sections.slopes(rows)
    assert slopes["blocked_pairs"] == pytest.approx(1.5) and slopes["link_seconds"] == pytest.approx(1.0)
    assert slopes["peak_rss"] == pytest.approx(0.0, abs=1e-9) and slopes["encode_seconds"] == pytest.approx(1.0)
    assert 0.5 < slopes["cleartext_seconds"] < 1.0  # a fixed cost flattens the fitted slope
