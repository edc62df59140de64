"""An HTML page per refine run: every item's image sequence with critiques, scores and request diffs, plus a summary.

The summary has the run's numbers (``runner.summarize``) and a test-time scaling plot: the mean
best reward so far against generator calls spent (an item that stopped keeps its last value, as
it spends no more). Sibling run folders (same parent) made on the same benchmark with the same
generator and model but another method (GCR vs best-of-N vs single) are drawn on the same plot;
``compare=`` names other runs explicitly. Images are linked relatively (the page sits in the run
folder) or, with ``embed=True``, embedded as data URLs so the page stands alone.
"""

from __future__ import annotations

import base64
import difflib
import html
import json
from pathlib import Path
from typing import Any

from ..rubric import BY_KEY, dimensions_for
from .loop import Trajectory
from .runner import load_run, summarize

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
.item{border-top:2px solid #888;margin-top:2em;padding-top:1em}
.round{margin:1em 0 1em 1em;padding-left:1em;border-left:3px solid #ddd}
.cands{display:flex;flex-wrap:wrap;gap:1em}.cand{border:1px solid #ccc;padding:.5em;max-width:280px}
.cand.best{border:3px solid #2a2}.cand img,.src img{max-width:256px;image-rendering:pixelated}
del{background:#fdd;color:#900}ins{background:#dfd;color:#060;text-decoration:none}
.req{font-family:ui-monospace,monospace;background:#f6f6f6;padding:.4em}.muted{color:#777}
.warn{color:#a60}
"""


def request_diff_html(old: str, new: str) -> str:
    """Word-level diff of two requests as HTML: removed words in ``<del>``, added words in ``<ins>``."""
    a, b = old.split(), new.split()
    out: list[str] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            out.append(html.escape(" ".join(b[j1:j2])))
            continue
        if op in ("delete", "replace"):
            out.append(f"<del>{html.escape(' '.join(a[i1:i2]))}</del>")
        if op in ("insert", "replace"):
            out.append(f"<ins>{html.escape(' '.join(b[j1:j2]))}</ins>")
    return " ".join(out)


def scaling_curve(trajectories: list[Trajectory]) -> list[tuple[int, float]]:
    """(generator calls, mean best reward so far) for calls = 1..max; stopped items keep their last value."""
    curves = [t.anytime_curve() for t in trajectories]
    longest = max((len(c) for c in curves), default=0)
    points = []
    for n in range(1, longest + 1):
        vals = [c[min(n, len(c)) - 1] for c in curves if c]
        vals = [v for v in vals if v is not None]
        if vals:
            points.append((n, sum(vals) / len(vals)))
    return points


def _fmt(x: Any, digits: int = 3) -> str:
    if x is None:
        return "—"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return html.escape(str(x))


def _img_src(run_dir: Path, rel: str | None, embed: bool) -> str | None:
    if not rel:
        return None
    path = run_dir / rel
    if embed:
        if not path.is_file():
            return None
        return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")
    return html.escape(rel)


def _sibling_runs(run_dir: Path, settings: dict[str, Any]) -> list[Path]:
    me = settings.get("settings", {})
    found = []
    for other in sorted(run_dir.parent.iterdir()):
        if other == run_dir or not (other / "run.json").is_file():
            continue
        try:
            theirs = json.loads((other / "run.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        them = theirs.get("settings", {})
        same = all(them.get(k) == me.get(k) for k in ("generator", "model", "template_version", "repeats"))
        if same and theirs.get("bench") == settings.get("bench") and them.get("method") != me.get("method"):
            found.append(other)
    return found


def scaling_plot(runs: dict[str, list[Trajectory]], out_png: str | Path) -> Path:
    """Draw mean best reward vs generator calls for each labelled run into ``out_png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6), dpi=110)
    for label, trajs in runs.items():
        pts = scaling_curve(trajs)
        if pts:
            xs, ys = zip(*pts, strict=True)
            ax.plot(xs, ys, marker="o", label=label)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("generator calls per item")
    ax.set_ylabel("mean best reward so far")
    ax.set_title("Test-time scaling")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out = Path(out_png)
    fig.savefig(out)
    plt.close(fig)
    return out


def _extra_html(extra: dict[str, Any] | None) -> str:
    if not extra:
        return ""
    return "".join(f" · {html.escape(str(k))} <b>{_fmt(v)}</b>" for k, v in extra.items())


def _candidate_html(
    run_dir: Path, t: Trajectory, r: int, c: Any, embed: bool, extra: dict[str, dict[str, Any]] | None = None
) -> str:
    best = t.best_round == r and t.best_candidate == c.index
    src = _img_src(run_dir, c.image_path, embed)
    parts = [f'<div class="cand{" best" if best else ""}">']
    if src:
        parts.append(f'<img src="{src}" alt="round {r} candidate {c.index}">')
    parts.append(
        f"<div>seed {c.seed} · reward <b>{_fmt(c.reward)}</b>{' · <b>best</b>' if best else ''}"
        f"{_extra_html((extra or {}).get(c.image_hash))}</div>"
    )
    crit = c.critique
    if crit.parse_status == "failed":
        parts.append(f'<div class="warn">critique failed to parse: {html.escape("; ".join(crit.parse_errors))}</div>')
    rows = []
    for d in dimensions_for(t.task):
        score = c.scores.get(d.key)
        shown = "N/A" if (score is None and d.key in crit.na) else _fmt(score, 2)
        why = crit.justifications.get(d.key, "")
        rows.append(
            f"<tr><td>{html.escape(BY_KEY[d.key].title)}</td><td>{shown}</td>"
            f"<td class='muted'>{html.escape(why)}</td></tr>"
        )
    parts.append("<table>" + "".join(rows) + "</table>")
    details = []
    if crit.summary:
        details.append(f"<p><b>Summary:</b> {html.escape(crit.summary)}</p>")
    if crit.refinement_comments:
        details.append(f"<p><b>Refinement comments:</b> {html.escape(crit.refinement_comments)}</p>")
    if crit.refined_request:
        details.append(f"<p><b>Refined request:</b> {html.escape(crit.refined_request)}</p>")
    if details:
        parts.append("<details><summary>critique</summary>" + "".join(details) + "</details>")
    parts.append("</div>")
    return "".join(parts)


def _item_html(
    run_dir: Path, rec: dict[str, Any], t: Trajectory, embed: bool, extra: dict[str, dict[str, Any]] | None = None
) -> str:
    parts = [f'<div class="item" id="{html.escape(t.id)}"><h3>{html.escape(t.id)}</h3>']
    parts.append(f'<div class="req">{html.escape(t.request)}</div>')
    parts.append(
        f"<p>first reward {_fmt(t.first_reward)} → best {_fmt(t.best_reward)} (gain {_fmt(t.gain)}) · "
        f"{len(t.rounds)} round(s) · {t.generator_calls} generator call(s) · stopped: "
        f"<b>{html.escape(t.stop_reason or '?')}</b>"
        + (f' · <span class="warn">{t.parse_failures} unparsed critique(s)</span>' if t.parse_failures else "")
        + (f" · final image: <code>{html.escape(rec['output'])}</code>" if rec.get("output") else "")
        + _extra_html((extra or {}).get(t.id))
        + "</p>"
    )
    src = _img_src(run_dir, t.source_path, embed) if t.source_path and not Path(t.source_path).is_absolute() else None
    if src:
        parts.append(f'<div class="src">source<br><img src="{src}" alt="source"></div>')
    previous = t.request
    for rnd in t.rounds:
        parts.append(f'<div class="round"><h4>Round {rnd.index}</h4>')
        label = html.escape(rnd.request_source)
        parts.append(f'<div>request ({label}): <div class="req">{request_diff_html(previous, rnd.request)}</div></div>')
        if rnd.constraint_missing:
            missing = html.escape(", ".join(rnd.constraint_missing))
            parts.append(f'<div class="warn">refined request rejected, it dropped: {missing}</div>')
        if rnd.note and not rnd.constraint_missing:
            parts.append(f'<div class="muted">{html.escape(rnd.note)}</div>')
        parts.append('<div class="cands">')
        parts.extend(_candidate_html(run_dir, t, rnd.index, c, embed, extra) for c in rnd.candidates)
        parts.append("</div></div>")
        previous = rnd.request
    parts.append("</div>")
    return "".join(parts)


def _summary_table(rows: dict[str, dict[str, Any]]) -> str:
    keys = [
        ("items", "items"),
        ("mean_first_reward", "mean first reward"),
        ("mean_best_reward", "mean best reward"),
        ("mean_gain", "mean gain"),
        ("improved_items", "items improved"),
        ("mean_rounds", "mean rounds"),
        ("mean_generator_calls", "mean generator calls"),
        ("generator_calls", "generator calls"),
        ("parse_failures", "unparsed critiques"),
        ("unscored_items", "items with no parsed critique"),
        ("constraint_fallbacks", "constraint fallbacks"),
        ("stop_reasons", "stop reasons"),
    ]
    head = "<tr><th></th>" + "".join(f"<th>{html.escape(label)}</th>" for label in rows) + "</tr>"
    body = []
    for k, title in keys:
        cells = []
        for s in rows.values():
            v = s.get(k)
            cells.append(f"<td>{html.escape(json.dumps(v)) if isinstance(v, dict) else _fmt(v)}</td>")
        body.append(f"<tr><th>{html.escape(title)}</th>{''.join(cells)}</tr>")
    return "<table>" + head + "".join(body) + "</table>"


def write_report(
    run_dir: str | Path,
    out: str | Path | None = None,
    compare: list[str | Path] | None = None,
    embed: bool = False,
    extra_columns: dict[str, dict[str, Any]] | None = None,
    note: str | None = None,
) -> Path:
    """Write ``report.html`` (and ``scaling.png``) for a run folder; return the page's path.

    ``compare`` lists other run folders for the summary and the scaling plot; None finds sibling
    runs of other methods on the same benchmark, generator and model. ``extra_columns`` adds
    labelled values beside the model's numbers: keys are item ids (shown in the item's header line)
    or candidate image hashes (shown beside that candidate's reward), e.g. a synthetic world's true
    utility. ``note`` is a line of text shown under the title.
    """
    run = Path(run_dir)
    settings, records = load_run(run)
    trajs = [Trajectory.model_validate(r["trajectory"]) for r in records]
    method = settings.get("settings", {}).get("method", "run")
    others = [Path(p) for p in compare] if compare is not None else _sibling_runs(run, settings)
    runs: dict[str, list[Trajectory]] = {f"{method} ({run.name})": trajs}
    for other in others:
        o_settings, o_records = load_run(other)
        label = f"{o_settings.get('settings', {}).get('method', 'run')} ({other.name})"
        runs[label] = [Trajectory.model_validate(r["trajectory"]) for r in o_records]

    png = scaling_plot(runs, run / "scaling.png")
    plot_src = "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode("ascii")
    s = settings.get("settings", {})
    page = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>refine run {html.escape(run.name)}</title><style>{_CSS}</style></head><body>",
        f"<h1>Refine run: {html.escape(run.name)}</h1>",
        f"<p>method <b>{html.escape(str(method))}</b> · generator <code>{html.escape(str(s.get('generator')))}</code>"
        f" · reward model <code>{html.escape(str(s.get('model')))}</code> (template "
        f"{html.escape(str(s.get('template')))} {html.escape(str(s.get('template_version')))})"
        f" · benchmark <code>{html.escape(str(settings.get('bench')))}</code></p>",
        f"<p>{html.escape(note)}</p>" if note else "",
        f"<details><summary>policy</summary><pre>{html.escape(json.dumps(s.get('policy'), indent=1))}</pre></details>",
        "<h2>Summary</h2>",
        _summary_table({label: summarize(ts) for label, ts in runs.items()}),
        f'<img src="{plot_src}" alt="test-time scaling plot">',
        "<h2>Items</h2>",
    ]
    page.extend(_item_html(run, rec, t, embed, extra_columns) for rec, t in zip(records, trajs, strict=True))
    page.append("</body></html>")
    target = Path(out) if out is not None else run / "report.html"
    target.write_text("\n".join(page), encoding="utf-8")
    return target
