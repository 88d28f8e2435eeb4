"""Charts (PNG) and a self-contained HTML report, drawn from a :class:`Release` only.

The report never sees raw measures: it takes the protected tables, so what is drawn is what
may be published. Suppressed cells are drawn as gaps labelled [c], never as zeros.
"""

from __future__ import annotations

import base64
import html
import os
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from simlink import outputs  # noqa: E402
from simlink.counts.disclosure import SUPPRESSED_MARK  # noqa: E402
from simlink.errors import SimlinkError  # noqa: E402
from simlink.counts.release import Release  # noqa: E402

CHARTS = ("service_overlap.png", "contacts_per_person.png", "monthly_trend.png")
_BAR = "#3b6ea5"
_ACCENT = "#c0504d"
_THOUSANDS = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}")


def _values(series: pd.Series) -> np.ndarray:
    return np.array([np.nan if pd.isna(v) else float(v) for v in series])


def _mark_suppressed(ax, xs, vals, horizontal: bool = False) -> None:
    for x, v in zip(xs, vals):
        if np.isnan(v):
            if horizontal:
                ax.text(0, x, f" {SUPPRESSED_MARK}", va="center", ha="left", color="grey")
            else:
                ax.text(x, 0, SUPPRESSED_MARK, ha="center", va="bottom", color="grey", fontsize=8)


def chart_overlap(rel: Release, path: Path) -> None:
    """UpSet-style: people per exact service combination, with a dot matrix of services."""
    combos = rel.tables["combinations"]
    keep = combos[combos["people"].isna() | (combos["people"].fillna(0) > 0)].copy()
    keep["_sort"] = keep["people"].astype("Float64").fillna(-1)
    keep = keep.sort_values("_sort", ascending=False)
    services = list(rel.tables["by_service"]["service"])
    n = max(len(keep), 1)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(max(6, 0.6 * n + 2), 6.5), sharex=True,
                                      gridspec_kw={"height_ratios": [3, 1.4], "hspace": 0.05})
    xs = np.arange(len(keep))
    vals = _values(keep["people"])
    top.bar(xs, np.nan_to_num(vals), color=_BAR)
    _mark_suppressed(top, xs, vals)
    for x, v in zip(xs, vals):
        if not np.isnan(v):
            top.text(x, v, f"{v:,.0f}", ha="center", va="bottom", fontsize=8)
    top.set_ylabel("people")
    top.yaxis.set_major_formatter(_THOUSANDS)
    top.set_title("People by the exact set of services they used")
    top.spines[["top", "right"]].set_visible(False)
    for y, svc in enumerate(services):
        used = [svc in c.split("+") for c in keep["combination"]]
        bottom.scatter(xs, [y] * len(xs), c=[_BAR if u else "#dddddd" for u in used], s=60)
        for x, u, c in zip(xs, used, keep["combination"]):
            if u:
                members = [services.index(s) for s in c.split("+")]
                bottom.plot([x, x], [min(members), max(members)], color=_BAR, lw=2, zorder=0)
    bottom.set_yticks(range(len(services)), [s.replace("_", " ") for s in services])
    bottom.set_xticks([])
    bottom.set_ylim(-0.5, len(services) - 0.5)
    bottom.spines[["top", "right", "bottom"]].set_visible(False)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def chart_bands(rel: Release, path: Path) -> None:
    """How many contacts each person had (all services together)."""
    bands = rel.tables["contact_bands"]
    vals = _values(bands["people"])
    xs = np.arange(len(bands))
    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.bar(xs, np.nan_to_num(vals), color=_BAR)
    _mark_suppressed(ax, xs, vals)
    for x, v in zip(xs, vals):
        if not np.isnan(v):
            ax.text(x, v, f"{v:,.0f}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(xs, list(bands["band"]))
    ax.set_xlabel("contacts per person (all services)")
    ax.set_ylabel("people")
    ax.yaxis.set_major_formatter(_THOUSANDS)
    ax.set_title("Contacts per person")
    ax.spines[["top", "right"]].set_visible(False)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def chart_monthly(rel: Release, path: Path) -> None:
    """Contacts and repeat-contact people per month; suppressed months are gaps."""
    monthly = rel.tables["monthly"]
    monthly = monthly[monthly["month"] != "unknown"]
    xs = np.arange(len(monthly))
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(max(6.5, 0.35 * len(xs) + 2), 5.5), sharex=True)
    for ax, col, colour, label in ((a1, "contacts", _BAR, "contacts"),
                                   (a2, "repeat_people", _ACCENT, "repeat-contact people")):
        vals = _values(monthly[col])
        ax.plot(xs, vals, marker="o", ms=3, color=colour)
        ax.set_ylabel(label)
        ax.set_ylim(bottom=0)
        ax.yaxis.set_major_formatter(_THOUSANDS)
        ax.spines[["top", "right"]].set_visible(False)
        _mark_suppressed(ax, xs, vals)
    fig.suptitle(f"Monthly trend\n{rel.rule.describe()}", fontsize=10)
    step = max(1, len(xs) // 12)
    a2.set_xticks(xs[::step], list(monthly["month"])[::step], rotation=45, ha="right")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def _html_table(df: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = []
    for rec in df.itertuples(index=False):
        cells = []
        for v in rec:
            text = SUPPRESSED_MARK if pd.isna(v) else (f"{v:.1f}" if isinstance(v, float) else str(v))
            cells.append(f"<td>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def write_report(rel: Release, out_dir: str | Path) -> Path:
    """Write the three PNG charts and report.html (images embedded) to ``out_dir``."""
    target = Path(out_dir)
    outputs.check_creatable_folder(target, "report folder")
    outputs.clean_stale_partials(target)
    out = outputs.partial_path(target)  # built aside, moved in whole: no half-written report
    try:
        out.mkdir()
        _write_report_files(rel, out)
        target.mkdir(parents=True, exist_ok=True)
        for name in (*CHARTS, "report.html"):
            os.replace(out / name, target / name)
    except OSError as exc:
        raise SimlinkError(f"cannot write the report ({outputs.reason(exc)})", path=target) from None
    finally:
        outputs.remove(out)
    return target / "report.html"


def _write_report_files(rel: Release, out: Path) -> None:
    for name, draw in zip(CHARTS, (chart_overlap, chart_bands, chart_monthly)):
        draw(rel, out / name)
    images = "".join(
        f'<figure><img alt="{html.escape(n)}" src="data:image/png;base64,'
        f'{base64.b64encode((out / n).read_bytes()).decode()}"></figure>' for n in CHARTS)
    banner = ("" if rel.protected else
              '<p class="unsafe">UNPROTECTED: exact counts, no disclosure control. '
              "Do not publish or share.</p>")
    rules = "".join(f"<li>{html.escape(s)}</li>" for s in [rel.rule.describe(), *rel.statement])
    totals = dict(zip(rel.tables["totals"]["measure"], rel.tables["totals"]["count"]))
    labels = {"contacts": "contacts", "people": "people",
              "repeat_people": "repeat-contact people"}
    kpis = "".join(
        f'<div class="kpi"><b>{SUPPRESSED_MARK if pd.isna(totals.get(k)) else f"{totals[k]:,}"}'
        f"</b>{html.escape(v)}</div>" for k, v in labels.items())
    tables = "".join(f"<h3>{html.escape(n)}</h3>{_html_table(df)}" for n, df in rel.tables.items())
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>simlink linked counts</title><style>
body{{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;color:#222}}
img{{max-width:100%}} figure{{margin:1.5em 0}} .unsafe{{background:#fdd;border:2px solid #c00;
padding:.8em;font-weight:bold}} .kpis{{display:flex;gap:1em}}
.kpi{{background:#eef3f9;padding:.8em 1.2em;border-radius:6px}} .kpi b{{display:block;font-size:1.8em}} table{{border-collapse:collapse;margin:.5em 0 1.5em}}
td,th{{border:1px solid #ccc;padding:.25em .6em;text-align:right}} th{{background:#f3f3f3}}
</style></head><body>
<h1>Linked crisis contacts: counts across services</h1>{banner}
<p>Counts of people and contacts after linking the agencies' records. No list of people is
released; every number below went through disclosure control.</p>
<div class="kpis">{kpis}</div>
<h2>Rules applied</h2><ul>{rules}</ul>
<h2>Charts</h2>{images}
<h2>Tables</h2>{tables}
</body></html>"""
    (out / "report.html").write_text(page, encoding="utf-8")
