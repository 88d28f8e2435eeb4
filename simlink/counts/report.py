"""Charts (PNG) and a self-contained HTML report, drawn from a :class:`Release` only.

The report never sees raw measures: it takes the protected tables, so what is drawn is what
may be published. Suppressed cells are drawn as gaps (shaded, labelled [c]), never as zeros;
axes carry whole-number ticks so small or rounded data still read correctly.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import os
from pathlib import Path

import matplotlib
import matplotlib.patches
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.transforms as mtransforms  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from simlink import outputs  # noqa: E402
from simlink.counts.disclosure import SUPPRESSED_MARK  # noqa: E402
from simlink.errors import SimlinkError  # noqa: E402
from simlink.counts.measures import UNKNOWN_MONTH  # noqa: E402
from simlink.counts.release import DIMENSION, Release  # noqa: E402

CHARTS = ("service_overlap.png", "contacts_per_person.png", "monthly_trend.png",
          "monthly_by_service.png")
_BAR = "#3b6ea5"
_ACCENT = "#c0504d"
_GAP = "#eeeeee"
_SERVICE_COLOURS = ("#3b6ea5", "#c0504d", "#6a9a3a", "#8064a2", "#d08a2b", "#4bacc6")
_THOUSANDS = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}")

TABLE_TITLES = {
    "totals": "Totals", "by_service": "By service",
    "services_used": "People by number of services used",
    "combinations": "People by the exact set of services used",
    "contact_bands": "People by number of contacts", "monthly": "By month",
    "monthly_by_service": "Contacts by month and service",
}
COLUMN_LABELS = {
    "measure": "Measure", "count": "Count", "service": "Service", "contacts": "Contacts",
    "people": "People", "repeat_people": "Repeat-contact people",
    "repeat_contacts": "Contacts by repeat-contact people",
    "repeat_contact_share": "Share of contacts by repeat-contact people (%)",
    "n_services": "Number of services", "combination": "Services used",
    "band": "Contacts per person",
    "month": "Month",
}
#: Pairwise linkage quality measured on synthetic data (docs/linkage.md, "Threshold choice":
#: benchmarks/link_quality.py, simlink synth --people 20000 --seed 7, medium errors, key 3).
SYNTHETIC_QUALITY = {0.9: (0.9942, 0.9933), 0.95: (0.9959, 0.9918), 0.99: (0.9980, 0.9881)}


def label(name: str) -> str:
    """A reader's name for a column, service or measure."""
    if name in COLUMN_LABELS:
        return COLUMN_LABELS[name]
    pretty = {"ed": "ED", "mental_health": "mental health", "repeat_people":
              "repeat-contact people", "repeat_contacts": "contacts by repeat-contact people"}
    return "+".join(pretty.get(p, p.replace("_", " ")) for p in str(name).split("+"))


def _month(text: str) -> str:
    try:
        return _dt.datetime.strptime(text, "%Y-%m").strftime("%b %Y")
    except ValueError:
        return text


def _values(series: pd.Series) -> np.ndarray:
    return np.array([np.nan if pd.isna(v) else float(v) for v in series])


def _count_axis(ax, vals: np.ndarray, horizontal: bool = False) -> None:
    """Whole-number ticks from 0, with head room, whatever the size of the data. The scale
    reaches at least 10: published counts are 0 or at least the suppression limit, so a
    scale of 0-5 would suggest counts that can never be shown."""
    top = np.nanmax(vals) if np.isfinite(vals).any() else 0.0
    axis = ax.xaxis if horizontal else ax.yaxis
    axis.set_major_locator(matplotlib.ticker.MaxNLocator(nbins=4, integer=True,
                                                         steps=[1, 2, 5, 10]))
    axis.set_major_formatter(_THOUSANDS)
    (ax.set_xlim if horizontal else ax.set_ylim)(0, max(top * 1.18, 10))


def _mark_gaps(ax, xs, vals) -> None:
    """Suppressed bars: a pale column the height of the axes with [c] inside, above the axis."""
    trans = mtransforms.blended_transform_factory(ax.transData, ax.transAxes)
    for x, v in zip(xs, vals):
        if np.isnan(v):
            ax.bar(x, 1, width=0.8, bottom=0, color=_GAP, transform=trans, zorder=0)
            ax.text(x, 0.04, SUPPRESSED_MARK, transform=trans, ha="center", va="bottom",
                    color="#666666", fontsize=8)


def _bars(ax, xs, vals, colour: str = _BAR) -> None:
    ax.bar(xs, np.nan_to_num(vals), color=colour, zorder=2)
    _mark_gaps(ax, xs, vals)
    for x, v in zip(xs, vals):
        if not np.isnan(v):
            ax.annotate(f"{v:,.0f}", (x, v), xytext=(0, 2), textcoords="offset points",
                        ha="center", va="bottom", fontsize=8)
    _count_axis(ax, vals)
    if not np.isfinite(vals).any():
        ax.set_yticks([])
        ax.text(0.5, 0.6, "all values suppressed", transform=ax.transAxes, ha="center",
                color="#666666")
    ax.spines[["top", "right"]].set_visible(False)


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
    _bars(top, xs, _values(keep["people"]))
    top.set_ylabel("people")
    top.set_title("People by the exact set of services they used\n"
                  f"(grey {SUPPRESSED_MARK} = suppressed; combinations with no one are left out)",
                  fontsize=10)
    for y, svc in enumerate(services):
        used = [svc in c.split("+") for c in keep["combination"]]
        bottom.scatter(xs, [y] * len(xs), c=[_BAR if u else "#dddddd" for u in used], s=60)
        for x, u, c in zip(xs, used, keep["combination"]):
            if u:
                members = [services.index(s) for s in c.split("+")]
                bottom.plot([x, x], [min(members), max(members)], color=_BAR, lw=2, zorder=0)
    bottom.set_yticks(range(len(services)), [label(s) for s in services])
    bottom.set_xticks([])
    bottom.set_ylim(-0.5, len(services) - 0.5)
    bottom.spines[["top", "right", "bottom"]].set_visible(False)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def chart_bands(rel: Release, path: Path) -> None:
    """How many contacts each person had (all services together)."""
    bands = rel.tables["contact_bands"]
    xs = np.arange(len(bands))
    fig, ax = plt.subplots(figsize=(6.5, 4))
    _bars(ax, xs, _values(bands["people"]))
    ax.set_xticks(xs, list(bands["band"]))
    ax.set_xlabel("contacts per person (all services)")
    ax.set_ylabel("people")
    ax.set_title(f"Contacts per person (grey {SUPPRESSED_MARK} = suppressed)", fontsize=10)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def _dated(table: pd.DataFrame) -> pd.DataFrame:
    return table[table["month"] != UNKNOWN_MONTH]


def _month_axis(ax, months: list[str]) -> None:
    xs = np.arange(len(months))
    step = max(1, int(np.ceil(len(xs) / 12)))
    ax.set_xticks(xs[::step], [_month(m) for m in months[::step]], rotation=45, ha="right")
    ax.set_xlim(-0.5, max(len(xs) - 0.5, 0.5))


def _line(ax, xs, vals, colour: str, name: str | None = None, shade: bool = True) -> None:
    """A line that breaks where a value is suppressed; suppressed months shaded when asked."""
    ax.plot(xs, vals, marker="o", ms=3, color=colour, label=name, zorder=2)
    if shade:
        for x, v in zip(xs, vals):
            if np.isnan(v):
                ax.axvspan(x - 0.5, x + 0.5, color=_GAP, zorder=0, lw=0)


def chart_monthly(rel: Release, path: Path) -> None:
    """Contacts, people and repeat-contact people per month; suppressed months are gaps."""
    monthly = _dated(rel.tables["monthly"])
    months = list(monthly["month"])
    xs = np.arange(len(months))
    fig, axes = plt.subplots(3, 1, figsize=(max(6.5, 0.35 * len(xs) + 2), 7.5), sharex=True)
    for ax, col, colour in zip(axes, ("contacts", "people", "repeat_people"),
                               (_BAR, "#6a9a3a", _ACCENT)):
        vals = _values(monthly[col])
        _line(ax, xs, vals, colour)
        _count_axis(ax, vals)
        ax.set_ylabel(label(col).replace("Repeat-contact people", "repeat-contact\npeople"))
        ax.spines[["top", "right"]].set_visible(False)
    gap = matplotlib.patches.Patch(color=_GAP, label=f"suppressed {SUPPRESSED_MARK}")
    axes[0].legend(handles=[gap], loc="upper right", fontsize=8, frameon=False)
    fig.suptitle(f"Monthly trend — {rel.rule.describe()}", fontsize=10)
    _month_axis(axes[-1], months)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def chart_monthly_by_service(rel: Release, path: Path) -> None:
    """Contacts per month, one small panel per service on a shared scale; suppressed months
    are shaded gaps."""
    table = _dated(rel.tables["monthly_by_service"])
    months = list(table["month"])
    services = [c for c in table.columns if c != "month"]
    xs = np.arange(len(months))
    ncol = 2
    nrow = int(np.ceil(len(services) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(max(8, 0.3 * len(xs) * ncol + 2), 2.4 * nrow + 1),
                             sharex=True, sharey=True, squeeze=False)
    every = np.concatenate([_values(table[s]) for s in services] or [np.array([np.nan])])
    for i, ax in enumerate(axes.flat):
        if i >= len(services):
            ax.set_visible(False)
            continue
        vals = _values(table[services[i]])
        _line(ax, xs, vals, _SERVICE_COLOURS[i % len(_SERVICE_COLOURS)])
        ax.set_title(label(services[i]), fontsize=9, loc="left")
        ax.spines[["top", "right"]].set_visible(False)
        _count_axis(ax, every)
        if i % ncol == 0:
            ax.set_ylabel("contacts")
    for ax in axes[-1]:
        if ax.get_visible():
            _month_axis(ax, months)
    gap = matplotlib.patches.Patch(color=_GAP, label=f"suppressed {SUPPRESSED_MARK}")
    fig.legend(handles=[gap], loc="upper right", fontsize=8, frameon=False)
    fig.suptitle("Contacts per month by service", fontsize=10)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def _cell(rel: Release, table: str, rec: dict, col: str) -> str:
    text = rel.cell_text(table, rec, col)
    val = rec[col]
    if col == DIMENSION[table]:
        return _month(text) if col == "month" else (label(text) if col in ("service",
                                                    "measure", "combination") else text)
    if not pd.isna(val) and isinstance(val, (int, np.integer)):
        return f"{int(val):,}"
    return text


def _html_table(rel: Release, name: str) -> str:
    df = rel.tables[name]
    head = "".join(f"<th>{html.escape(label(c))}</th>" for c in df.columns)
    body = []
    for rec in df.to_dict("records"):
        cells = "".join(f"<td>{html.escape(_cell(rel, name, rec, c))}</td>" for c in df.columns)
        body.append(f"<tr>{cells}</tr>")
    return (f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>")


def linkage_lines(rel: Release) -> list[str]:
    """What the report says about the linkage and its error, and where each figure comes from."""
    meta = rel.linkage or {}
    if not meta:
        return ["The linkage database has no run metadata: threshold and linkage error unknown."]
    out = []
    threshold = meta.get("threshold_match_probability")
    if threshold is not None:
        out.append(f"Records were linked into people when Splink's match probability was at "
                   f"least {threshold:g} (simlink link {meta.get('simlink_version', '')}, run "
                   f"{meta.get('created_utc', 'at an unrecorded time')}).")
    est = meta.get("model_error_estimate")
    if isinstance(est, dict) and est.get("pairs_linked"):
        missed = est.get("expected_missed_links_among_scored_pairs") or 0
        out.append(f"Model estimate (from Splink's match probabilities of the "
                   f"{est['pairs_linked']:,} linked record pairs; not checked against truth): "
                   f"expected false links {est['expected_false_links']:,.1f}, expected pairwise "
                   f"precision {est['expected_pairwise_precision']:.4f}"
                   + (f"; expected true links left below the threshold, among the pairs scored: "
                      f"{missed:,.1f} (a lower bound)." if missed >= 0.05 else
                      ". Missed links cannot be estimated from the model alone (pairs below "
                      "the threshold were not kept)."))
    else:
        out.append("No model-based error estimate was recorded by this linkage run.")
    if threshold is not None and float(threshold) in SYNTHETIC_QUALITY:
        p, r = SYNTHETIC_QUALITY[float(threshold)]
        out.append(f"Measured on synthetic data at the same threshold (20,000 people, medium "
                   f"recording errors; docs/linkage.md): pairwise precision {p:.4f}, recall "
                   f"{r:.4f}. Linkage error is not spread evenly: groups with more recording "
                   "errors are linked less well.")
    return out


def data_period(rel: Release) -> str:
    months = [m for m in rel.tables["monthly"]["month"] if m != UNKNOWN_MONTH]
    scope = rel.meta.get("scope") or {}
    text = f"{_month(months[0])} to {_month(months[-1])}" if months else "no dated contacts"
    if scope.get("start") or scope.get("end"):
        text += f" (period asked for: {scope.get('start') or 'start'} to {scope.get('end') or 'end'})"
    if UNKNOWN_MONTH in set(rel.tables["monthly"]["month"]):
        text += "; some contacts have no date (counted, not charted by month)"
    return text


def write_report(rel: Release, out_dir: str | Path) -> Path:
    """Write the PNG charts and report.html (images embedded) to ``out_dir``."""
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
    for name, draw in zip(CHARTS, (chart_overlap, chart_bands, chart_monthly,
                                   chart_monthly_by_service)):
        draw(rel, out / name)
    images = "".join(
        f'<figure><img alt="{html.escape(n)}" src="data:image/png;base64,'
        f'{base64.b64encode((out / n).read_bytes()).decode()}"></figure>' for n in CHARTS)
    banner = ("" if rel.protected else
              '<p class="unsafe">UNPROTECTED: exact counts, no disclosure control. '
              "Do not publish or share.</p>")
    rules = "".join(f"<li>{html.escape(s)}</li>" for s in [rel.rule.describe(), *rel.statement])
    totals = {m: v for m, v in zip(rel.tables["totals"]["measure"], rel.tables["totals"]["count"])}
    kpis = "".join(
        f'<div class="kpi"><b>{SUPPRESSED_MARK if pd.isna(totals.get(k)) else f"{totals[k]:,}"}'
        f"</b>{html.escape(label(k).lower())}</div>"
        for k in ("contacts", "people", "repeat_people"))
    scope = rel.meta.get("scope") or {}
    agencies = ", ".join(label(a) for a in scope["agencies"]) if scope.get("agencies") else "all"
    generated = _dt.datetime.now(_dt.timezone.utc).strftime("%d %B %Y, %H:%M UTC")
    facts = [("Generated", generated), ("Data period", data_period(rel)),
             ("Agencies", agencies)]
    if rel.meta.get("release_id") is not None:
        facts.append(("Release", f"number {rel.meta['release_id']} from this linkage database"))
    fact_rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
                        for k, v in facts)
    link = "".join(f"<p>{html.escape(line)}</p>" for line in linkage_lines(rel))
    tables = "".join(f"<h3>{html.escape(TABLE_TITLES.get(n, n))}</h3>{_html_table(rel, n)}"
                     for n in rel.tables)
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Linked crisis contacts: counts across services</title><style>
body{{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222}}
img{{max-width:100%}} figure{{margin:1.5em 0}} .unsafe{{background:#fdd;border:2px solid #c00;
padding:.8em;font-weight:bold}} .kpis{{display:flex;flex-wrap:wrap;gap:1em}}
.kpi{{background:#eef3f9;padding:.8em 1.2em;border-radius:6px}} .kpi b{{display:block;font-size:1.8em}}
table{{border-collapse:collapse;margin:.5em 0 1.5em}} td,th{{border:1px solid #ccc;padding:.25em .6em;
text-align:right}} th{{background:#f3f3f3}} table.facts th,table.facts td{{text-align:left}}
td:first-child,th:first-child{{text-align:left}} .scroll{{overflow-x:auto}}
</style></head><body>
<h1>Linked crisis contacts: counts across services</h1>{banner}
<p>Counts of people and contacts after linking the agencies' records. No list of people is
released; every number below went through disclosure control ({SUPPRESSED_MARK} = suppressed,
n/a = not applicable).</p>
<table class="facts">{fact_rows}</table>
<div class="kpis">{kpis}</div>
<h2>Rules applied</h2><ul>{rules}</ul>
<h2>Linkage and its error</h2>{link}
<h2>Charts</h2>{images}
<h2>Tables</h2>{tables}
</body></html>"""
    (out / "report.html").write_text(page, encoding="utf-8")
