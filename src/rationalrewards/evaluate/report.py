"""Reports from finished run folders (nothing recomputed): markdown tables and an HTML page with plots.

``write_run_report(run_dir)`` writes ``report.md`` and ``report.html`` for one run;
``report(runs)`` compares several runs in one table (benchmark metrics x models, with
95% bootstrap CIs) and returns the markdown and the HTML.
"""

from __future__ import annotations

import base64
import io
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..rubric import BY_KEY
from .metrics import Accuracy
from .runner import MANIFEST, METRICS, WORST, read_json


def _acc(d: dict[str, Any] | None) -> Accuracy | None:
    return Accuracy.from_dict(d) if d else None


def _fmt(d: dict[str, Any] | None) -> str:
    a = _acc(d)
    return a.fmt() if a is not None else "—"


def _pct(x: float | None, digits: int = 1) -> str:
    return "—" if x is None else f"{100 * x:.{digits}f}%"


def headline(m: dict[str, Any], view: str = "overall") -> list[tuple[str, dict[str, Any]]]:
    """The numbers a benchmark is known by, for one view: (metric name, accuracy dict) in a stable order."""
    rows: list[tuple[str, dict[str, Any]]] = []
    for name, res in (m["views"].get(view) or {}).get("protocols", {}).items():
        rows.append((name, res["accuracy"]))
        for key, acc in res.get("by", {}).items():
            rows.append((f"{name} {key}", acc))
        if "group" in res:
            rows.append((f"{name} group", res["group"]["accuracy"]))
            for key, acc in res["group"].get("by", {}).items():
                rows.append((f"{name} group {key}", acc))
        held = (res.get("tie_threshold") or {}).get("heldout")
        if held:
            rows.append((f"{name} held-out ε", held["test"]))
    return rows


# ---------------------------------------------------------------------------
# markdown


def run_markdown(manifest: dict[str, Any], m: dict[str, Any]) -> str:
    lines = [
        f"# Evaluation: {manifest['bench']} · {manifest['model']}",
        "",
        f"- mode: {manifest['mode']}, both orders: {manifest['both_orders']}",
        f"- template: {manifest['template'].get('name')} (version {manifest['template'].get('version')})",
        f"- protocols: {', '.join(manifest['protocols'])}",
        f"- pairs scored: {m['n_pairs']}"
        + (f" of {m['n_expected']}" if m.get("n_expected") not in (None, m["n_pairs"]) else "")
        + (f" ({m['n_unlabelled']} unlabelled, left out)" if m.get("n_unlabelled") else ""),
        f"- data: {manifest['data']}; created {manifest.get('created')}, scored {m.get('scored_at')}",
        "",
        "## Accuracy (%, 95% bootstrap CI over pairs)",
        "",
        "| view | protocol | accuracy | judgements | pairs |",
        "|---|---|---|---|---|",
    ]
    for view in m["views"].values():
        for pname, res in view["protocols"].items():
            a = res["accuracy"]
            lines.append(f"| {view['title']} | {pname} | {_fmt(a)} | {a['total']} | {res['n_pairs']} |")
    lines += ["", "## Breakdown (overall view)", "", "| metric | accuracy | n |", "|---|---|---|"]
    for name, acc in headline(m):
        lines.append(f"| {name} | {_fmt(acc)} | {acc.get('total', 0)} |")
    tt_rows = []
    for view in m["views"].values():
        for pname, res in view["protocols"].items():
            tt = res.get("tie_threshold")
            if not tt or not tt.get("best"):
                continue
            held = tt.get("heldout")
            tt_rows.append(
                f"| {view['title']} | {pname} | {_pct(tt['accuracy'][0])} | {tt['best']['eps']:.3g} "
                f"({_pct(tt['best']['accuracy'])}) | "
                + (f"{held['eps']:.3g} | {_fmt(held['test'])} |" if held else "— | — |")
            )
    if tt_rows:
        lines += [
            "",
            "## Tie threshold ε on score differences (0-1 scale)",
            "",
            "| view | protocol | ε = 0 | best ε, all data (optimistic) | ε chosen on calibration half | "
            "accuracy on the other half |",
            "|---|---|---|---|---|---|",
            *tt_rows,
        ]
    lines += ["", "## Diagnostics", "", *diagnostics_markdown(m["diagnostics"])]
    return "\n".join(lines) + "\n"


def diagnostics_markdown(d: dict[str, Any]) -> list[str]:
    p = d["parse"]
    lines = [
        f"- critiques: {p['critiques']}; parsed ok {p['ok']}, partial {p['partial']}, failed {p['failed']} "
        f"(failure rate {_pct(p['failure_rate'])}); empty or backend errors {p['empty_or_backend_error']}",
    ]
    if p.get("missing_by_dimension"):
        lines.append(f"- missing scores by dimension: {p['missing_by_dimension']}")
    pb = d.get("position_bias")
    if pb:
        lines.append(
            f"- position bias: verdict flips when A and B swap in {_pct(pb['flip_rate'])} of {pb['pairs']} pairs; "
            f"first slot named in {_pct(pb['first_position_rate'])} of {pb['decided']} A/B verdicts (50% = unbiased)"
        )
    else:
        lines.append("- position bias: not measured (one order judged)")
    ra = d["rationale_agreement"]
    tv, sw, pv = ra["text_vs_scores"], ra["stated_winners_vs_scores"], ra["preference_vs_scores"]
    lines.append(
        f"- rationale-score agreement (heuristic): {_pct(tv['rate'])} of {tv['n']} justifications that take a side; "
        f"stated winners vs scores {_pct(sw['rate'])} of {sw['n']}; "
        f"preference vs scores {_pct(pv['rate'])} of {pv['n']}"
    )
    return lines


def comparison_markdown(runs: Sequence[dict[str, Any]]) -> str:
    """One table: benchmark metrics (rows) x models (columns), accuracy % with 95% CI."""
    models: list[str] = []
    for r in runs:
        if r["label"] not in models:
            models.append(r["label"])
    rows: dict[str, dict[str, str]] = {}
    for r in runs:
        for name, acc in headline(r["metrics"]):
            rows.setdefault(f"{r['manifest']['bench']} · {name}", {})[r["label"]] = _fmt(acc)
    lines = [
        "| benchmark · metric | " + " | ".join(models) + " |",
        "|---|" + "---|" * len(models),
    ]
    for key, cells in rows.items():
        lines.append(f"| {key} | " + " | ".join(cells.get(mdl, "—") for mdl in models) + " |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# plots (matplotlib's object API: no global backend is touched)


def _png(fig) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=72)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _figure(w: float, h: float):
    try:
        from matplotlib.figure import Figure
    except ImportError:  # pragma: no cover - matplotlib is a core dependency
        return None
    return Figure(figsize=(w, h))


def plot_accuracy(rows: Sequence[tuple[str, dict[str, Any]]], title: str) -> str | None:
    rows = [(n, a) for n, a in rows if a and a.get("value") is not None]
    if not rows:
        return None
    fig = _figure(7, 0.35 * len(rows) + 1.2)
    if fig is None:
        return None
    ax = fig.add_subplot()
    ys = list(range(len(rows)))[::-1]
    vals = [100 * a["value"] for _, a in rows]
    lo = [100 * (a["value"] - (a["ci_low"] if a["ci_low"] is not None else a["value"])) for _, a in rows]
    hi = [100 * ((a["ci_high"] if a["ci_high"] is not None else a["value"]) - a["value"]) for _, a in rows]
    ax.barh(ys, vals, xerr=[lo, hi], color="#4c78a8", capsize=3)
    ax.set_yticks(ys, [n for n, _ in rows], fontsize=8)
    ax.set_xlim(0, 100)
    ax.set_xlabel("accuracy, % (95% CI)")
    ax.set_title(title, fontsize=10)
    return _png(fig)


def plot_sweeps(m: dict[str, Any]) -> str | None:
    curves = []
    for view in m["views"].values():
        for pname, res in view["protocols"].items():
            tt = res.get("tie_threshold")
            if tt and tt.get("best"):
                curves.append((f"{view['title']} · {pname}", tt))
    if not curves:
        return None
    fig = _figure(7, 3.2)
    if fig is None:
        return None
    ax = fig.add_subplot()
    for name, tt in curves:
        xs = tt["grid"]
        ys = [None if a is None else 100 * a for a in tt["accuracy"]]
        (line,) = ax.plot(xs, ys, label=name, lw=1.2, drawstyle="steps-post")
        ax.plot([tt["best"]["eps"]], [100 * tt["best"]["accuracy"]], "o", color=line.get_color())
        if tt.get("heldout"):
            ax.axvline(tt["heldout"]["eps"], color=line.get_color(), ls=":", lw=1)
    ax.set_xlabel("tie threshold ε on the score difference (0-1 scale)")
    ax.set_ylabel("accuracy with ties, %")
    ax.set_title("ε sweep (dot: best on all data; dotted: chosen on the calibration half)", fontsize=9)
    ax.legend(fontsize=7)
    return _png(fig)


def plot_histograms(hists: dict[str, dict[str, int]]) -> str | None:
    """One grouped bar chart: per score value, a bar per dimension (share of that dimension's critiques)."""
    if not hists:
        return None
    fig = _figure(7, 2.8)
    if fig is None:
        return None
    ax = fig.add_subplot()
    labels = list(next(iter(hists.values())))
    width = 0.8 / len(hists)
    for i, (key, h) in enumerate(hists.items()):
        total = sum(h.values()) or 1
        xs = [x + (i - (len(hists) - 1) / 2) * width for x in range(len(labels))]
        ax.bar(
            xs,
            [100 * h.get(x, 0) / total for x in labels],
            width=width,
            label=BY_KEY[key].title if key in BY_KEY else key,
        )
    ax.set_xticks(range(len(labels)), labels)
    ax.set_ylabel("% of critiques")
    ax.set_title("score histograms per dimension (every critique, both sides)", fontsize=9)
    ax.legend(fontsize=7)
    return _png(fig)


def plot_comparison(runs: Sequence[dict[str, Any]]) -> str | None:
    models: list[str] = []
    for r in runs:
        if r["label"] not in models:
            models.append(r["label"])
    metrics_rows: dict[str, dict[str, dict[str, Any]]] = {}
    for r in runs:
        for name, acc in headline(r["metrics"]):
            if acc.get("value") is not None:
                metrics_rows.setdefault(f"{r['manifest']['bench']} · {name}", {})[r["label"]] = acc
    if not metrics_rows:
        return None
    names = list(metrics_rows)
    fig = _figure(7, 0.3 * len(names) * max(1, len(models)) + 1.2)
    if fig is None:
        return None
    ax = fig.add_subplot()
    height = 0.8 / len(models)
    for j, mdl in enumerate(models):
        ys = [len(names) - 1 - i + (j - (len(models) - 1) / 2) * height for i in range(len(names))]
        vals = [100 * (metrics_rows[n].get(mdl) or {}).get("value", 0) for n in names]
        ax.barh(ys, vals, height=height, label=mdl)
    ax.set_yticks(range(len(names))[::-1], names, fontsize=7)
    ax.set_xlim(0, 100)
    ax.set_xlabel("accuracy, %")
    ax.legend(fontsize=7)
    return _png(fig)


# ---------------------------------------------------------------------------
# HTML

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}
td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}
th{background:#f3f3f3}
.case{border:1px solid #ddd;margin:1em 0;padding:0.8em;display:flex;gap:1em}
.case img{max-width:160px;border:1px solid #999}
.imgs{display:flex;gap:0.5em}
.imgs figure{margin:0;text-align:center;font-size:0.8em}
.rationale{font-size:0.85em;flex:1}
.muted{color:#777}
"""

_RUN_TEMPLATE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{{ title }}</title><style>{{ css }}</style></head><body>
<h1>{{ title }}</h1>
<table>{% for k, v in facts %}<tr><th>{{ k }}</th><td>{{ v }}</td></tr>{% endfor %}</table>
<h2>Accuracy (%, 95% bootstrap CI over pairs)</h2>
<table><tr><th>view</th><th>protocol</th><th>accuracy</th><th>judgements</th><th>pairs</th><th>what counts</th></tr>
{% for r in acc_rows %}<tr><td>{{ r.view }}</td><td>{{ r.protocol }}</td><td>{{ r.acc }}</td>
<td>{{ r.total }}</td><td>{{ r.pairs }}</td><td class="muted">{{ r.desc }}</td></tr>{% endfor %}</table>
<h3>Breakdown (overall view)</h3>
<table><tr><th>metric</th><th>accuracy</th><th>n</th></tr>
{% for n, a, t in breakdown %}<tr><td>{{ n }}</td><td>{{ a }}</td><td>{{ t }}</td></tr>{% endfor %}</table>
{% for p in plots %}<p><img alt="{{ p.alt }}" src="{{ p.src }}"></p>{% endfor %}
<h2>Diagnostics</h2>
<ul>{% for line in diag %}<li>{{ line }}</li>{% endfor %}</ul>
<h2>Worst disagreements</h2>
<p class="muted">Wrong judgements (overall view) ranked by how many orders were wrong, then by the score margin.</p>
{% for w in worst %}<div class="case"><div class="imgs">
{% for name, src in w.thumbs.items() %}{% if src %}<figure><img alt="{{ name }}" src="{{ src }}">
<figcaption>{{ name }}</figcaption></figure>{% endif %}{% endfor %}</div>
<div class="rationale"><b>{{ w.id }}</b> — label <b>{{ w.label }}</b>, verdict
{% for order, v in w.verdicts.items() %}{{ order }} <b>{{ v or "none" }}</b>{{ ", " if not loop.last }}{% endfor %},
margin {{ "%.3f"|format(w.confidence) }}
<br><i>{{ w.request }}</i>
{% if w.summary %}<p><b>Summary:</b> {{ w.summary }}</p>{% endif %}
{% if w.summary_b %}<p><b>Summary (B):</b> {{ w.summary_b }}</p>{% endif %}
<table><tr><th>dimension</th><th>A</th><th>B</th><th>justification</th></tr>
{% for key, title in dims(w) %}<tr><td>{{ title }}</td><td>{{ score(w.scores_a, key) }}</td>
<td>{{ score(w.scores_b, key) }}</td><td>{{ w.justifications.get(key, "") }}</td></tr>{% endfor %}</table>
</div></div>{% else %}<p>No wrong judgements.</p>{% endfor %}
</body></html>
"""

_COMPARE_TEMPLATE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Evaluation comparison</title><style>{{ css }}</style></head><body>
<h1>Evaluation comparison</h1>
<table><tr><th>benchmark · metric</th>{% for m in models %}<th>{{ m }}</th>{% endfor %}</tr>
{% for key, cells in rows %}<tr><td>{{ key }}</td>
{% for c in cells %}<td>{{ c }}</td>{% endfor %}</tr>{% endfor %}</table>
{% if plot %}<p><img alt="comparison" src="{{ plot }}"></p>{% endif %}
<h2>Runs</h2>
<table><tr><th>run</th><th>benchmark</th><th>model</th><th>mode</th><th>template</th><th>pairs</th><th>diagnostics</th></tr>
{% for r in runs %}<tr><td><a href="{{ r.link }}">{{ r.dir }}</a></td><td>{{ r.bench }}</td><td>{{ r.model }}</td>
<td>{{ r.mode }}</td><td>{{ r.template }}</td><td>{{ r.pairs }}</td><td>{{ r.diag }}</td></tr>{% endfor %}</table>
</body></html>
"""


def _env():
    import jinja2

    return jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)


def _score(scores: dict[str, Any] | None, key: str) -> str:
    if not scores or scores.get(key) is None:
        return "—"
    return f"{float(scores[key]):g}"


def _dims(w: dict[str, Any]) -> list[tuple[str, str]]:
    keys = list(w.get("justifications") or {}) or list(w.get("scores_a") or {})
    return [(k, BY_KEY[k].title if k in BY_KEY else k) for k in keys]


def run_html(manifest: dict[str, Any], m: dict[str, Any], worst: list[dict[str, Any]]) -> str:
    descriptions = manifest.get("protocol_descriptions", {})
    acc_rows = []
    for view in m["views"].values():
        for pname, res in view["protocols"].items():
            acc_rows.append(
                {
                    "view": view["title"],
                    "protocol": pname,
                    "acc": _fmt(res["accuracy"]),
                    "total": res["accuracy"]["total"],
                    "pairs": res["n_pairs"],
                    "desc": descriptions.get(pname, ""),
                }
            )
    plots = []
    all_rows = [
        (f"{view['title']} · {pname}", res["accuracy"])
        for view in m["views"].values()
        for pname, res in view["protocols"].items()
    ]
    for alt, src in (
        ("accuracy by view and protocol", plot_accuracy(all_rows, "accuracy by view and protocol")),
        ("tie threshold sweep", plot_sweeps(m)),
        ("score histograms", plot_histograms(m["diagnostics"]["score_histograms"])),
    ):
        if src:
            plots.append({"alt": alt, "src": src})
    facts = [
        ("benchmark", f"{manifest['bench']} — {manifest.get('bench_description', '')}"),
        ("model", manifest["model"]),
        ("mode", f"{manifest['mode']}, both orders: {manifest['both_orders']}"),
        ("template", f"{manifest['template'].get('name')} (version {manifest['template'].get('version')})"),
        ("pairs scored", m["n_pairs"]),
        ("data", manifest["data"]),
        ("created / scored", f"{manifest.get('created')} / {m.get('scored_at')}"),
    ]
    return (
        _env()
        .from_string(_RUN_TEMPLATE)
        .render(
            title=f"Evaluation: {manifest['bench']} · {manifest['model']}",
            css=_CSS,
            facts=facts,
            acc_rows=acc_rows,
            breakdown=[(n, _fmt(a), a.get("total", 0)) for n, a in headline(m)],
            plots=plots,
            diag=[line.removeprefix("- ") for line in diagnostics_markdown(m["diagnostics"])],
            worst=worst,
            dims=_dims,
            score=_score,
        )
    )


def write_run_report(run_dir: str | Path) -> dict[str, Path]:
    """Write ``report.md`` and ``report.html`` of one run folder from its manifest, metrics and worst cases."""
    run_dir = Path(run_dir)
    manifest = read_json(run_dir / MANIFEST)
    m = read_json(run_dir / METRICS)
    worst = read_json(run_dir / WORST) if (run_dir / WORST).exists() else []
    md = run_dir / "report.md"
    html = run_dir / "report.html"
    md.write_text(run_markdown(manifest, m), encoding="utf-8")
    html.write_text(run_html(manifest, m, worst), encoding="utf-8")
    return {"markdown": md, "html": html}


def _load_run(path: Path) -> dict[str, Any]:
    path = Path(path)
    if not (path / METRICS).exists() or not (path / MANIFEST).exists():
        raise FileNotFoundError(f"{path} is not a finished run folder (needs {MANIFEST} and {METRICS})")
    return {"dir": path, "manifest": read_json(path / MANIFEST), "metrics": read_json(path / METRICS)}


def find_runs(paths: Sequence[str | Path]) -> list[Path]:
    """Run folders among ``paths``: each path itself when it is one, else the run folders below it."""
    out: list[Path] = []
    for p in map(Path, paths):
        if (p / METRICS).exists():
            out.append(p)
            continue
        found = sorted(m.parent for m in p.rglob(METRICS))
        if not found:
            raise FileNotFoundError(f"no finished run under {p} (no {METRICS})")
        out.extend(found)
    return out


def report(runs: Sequence[str | Path], out: str | Path | None = None) -> tuple[str, str]:
    """Compare finished runs (read, not recomputed): returns (markdown, html); with ``out``, writes both there."""
    loaded = [_load_run(p) for p in find_runs(runs)]
    seen = Counter((r["manifest"]["bench"], r["manifest"]["model"]) for r in loaded)
    for r in loaded:
        dup = seen[(r["manifest"]["bench"], r["manifest"]["model"])] > 1  # the same model twice: tell runs apart
        r["label"] = r["manifest"]["model"] + (f" ({r['dir'].name})" if dup else "")
    md = "# Evaluation comparison\n\n" + comparison_markdown(loaded)
    models = []
    for r in loaded:
        if r["label"] not in models:
            models.append(r["label"])
    rows: dict[str, dict[str, str]] = {}
    for r in loaded:
        for name, acc in headline(r["metrics"]):
            rows.setdefault(f"{r['manifest']['bench']} · {name}", {})[r["label"]] = _fmt(acc)
    out_path = Path(out) if out is not None else None
    run_rows = []
    for r in loaded:
        target = r["dir"] / "report.html"
        if out_path is not None:
            try:
                link = str(target.resolve().relative_to(out_path.resolve()))
            except ValueError:
                link = str(target.resolve())
        else:
            link = str(target)
        d = r["metrics"]["diagnostics"]
        pb = d.get("position_bias") or {}
        run_rows.append(
            {
                "link": link,
                "dir": str(r["dir"]),
                "bench": r["manifest"]["bench"],
                "model": r["manifest"]["model"],
                "mode": r["manifest"]["mode"],
                "template": f"{r['manifest']['template'].get('name')} {r['manifest']['template'].get('version')}",
                "pairs": r["metrics"]["n_pairs"],
                "diag": f"parse failures {_pct(d['parse']['failure_rate'])}; flip rate {_pct(pb.get('flip_rate'))}",
            }
        )
    html = (
        _env()
        .from_string(_COMPARE_TEMPLATE)
        .render(
            css=_CSS,
            models=models,
            rows=[(k, [cells.get(mdl, "—") for mdl in models]) for k, cells in rows.items()],
            plot=plot_comparison(loaded),
            runs=run_rows,
        )
    )
    if out_path is not None:
        out_path.mkdir(parents=True, exist_ok=True)
        (out_path / "report.md").write_text(md, encoding="utf-8")
        (out_path / "report.html").write_text(html, encoding="utf-8")
    return md, html


compare_runs = report
