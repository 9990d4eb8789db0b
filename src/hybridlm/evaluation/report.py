"""Write an evaluation as a PNG plot, a Markdown table and an HTML page."""

from __future__ import annotations

import html
from pathlib import Path

from hybridlm.evaluation.router_eval import REFERENCES, Evaluation
from hybridlm.extras import require


def _plot(evaluation: Evaluation, path: Path) -> None:
    require("matplotlib").use("Agg")
    plt = require("matplotlib.pyplot")

    panels = (1 if evaluation.two_model else 0) + (1 if evaluation.multi_model else 0)
    fig, axes = plt.subplots(1, panels, figsize=(7 * panels, 5), squeeze=False)
    ax_iter = iter(axes[0])
    if evaluation.two_model:
        ax = next(ax_iter)
        for r in evaluation.two_model:
            ax.plot([100 * p.strong_share for p in r.curve], [p.quality for p in r.curve], marker=".",
                    label=f"{r.name} (APGR {r.apgr:.3f})", linestyle="--" if r.name in REFERENCES else "-")
        ax.axhline(evaluation.weak_quality, color="grey", linestyle=":", label="small model")
        ax.axhline(evaluation.strong_quality, color="black", linestyle=":", label="large model")
        ax.set_xlabel("calls to the large model (%)")
        ax.set_ylabel("quality")
        ax.set_title(f"{evaluation.data}: quality vs large-model calls")
        ax.legend(fontsize=8)
    if evaluation.multi_model:
        ax = next(ax_iter)
        for r in evaluation.multi_model:
            costs, qualities = [1e6 * c for c, _ in r.points], [q for _, q in r.points]
            if len(r.points) == 1:
                ax.scatter(costs, qualities, marker="x")
                ax.annotate(r.name, (costs[0], qualities[0]), fontsize=7)
            else:
                ax.plot(costs, qualities, marker=".", label=f"{r.name} (AIQ {r.aiq:.3f})")
        ax.set_xlabel("mean cost per prompt ($ per million prompts)")
        ax.set_ylabel("quality")
        ax.set_title(f"{evaluation.data}: cost-quality frontier")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


Table = tuple[list[str], list[list[str]]]


def tables(evaluation: Evaluation) -> list[Table]:
    out: list[Table] = []
    if evaluation.two_model:
        out.append((["router", "APGR", "CPT(50%)", "CPT(80%)"],
                    [[r.name, f"{r.apgr:.3f}", f"{100 * r.cpt50:.1f}%", f"{100 * r.cpt80:.1f}%"]
                     for r in evaluation.two_model]))
    if evaluation.multi_model:
        rows = []
        for r in evaluation.multi_model:
            cheap, best = min(r.points), max(r.points, key=lambda p: p[1])
            rows.append([r.name, f"{r.aiq:.3f}", f"{cheap[0]:.2e} / {cheap[1]:.3f}", f"{best[0]:.2e} / {best[1]:.3f}"])
        out.append((["router or model", "AIQ", "cheapest point ($/prompt / quality)", "best point"], rows))
    return out


def _intro(evaluation: Evaluation) -> list[str]:
    lines = [f"Protocol: {evaluation.protocol}."]
    if evaluation.two_model:
        lines.append(f"Small model quality {evaluation.weak_quality:.4f}, large model {evaluation.strong_quality:.4f}.")
    return lines


def markdown(evaluation: Evaluation) -> str:
    lines = [f"# Router evaluation: {evaluation.data}", "", *_intro(evaluation), ""]
    for header, rows in tables(evaluation):
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        lines.append("")
    return "\n".join(lines)


def _html(evaluation: Evaluation, image: str) -> str:
    esc = html.escape
    parts = [f"<h1>Router evaluation: {esc(evaluation.data)}</h1>", *(f"<p>{esc(p)}</p>" for p in _intro(evaluation))]
    for header, rows in tables(evaluation):
        head = "".join(f"<th>{esc(h)}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
        parts.append(f"<table border=1 cellpadding=4><tr>{head}</tr>{body}</table>")
    parts.append(f"<p><img src='{esc(image)}' style='max-width:100%'></p>")
    return ("<!doctype html><meta charset=utf-8><title>router evaluation</title>"
            "<body style='font-family:sans-serif;max-width:70em;margin:auto'>" + "".join(parts) + "</body>")


def write_report(evaluation: Evaluation, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"router-{evaluation.data}"
    png, md, page = folder / f"{stem}.png", folder / f"{stem}.md", folder / f"{stem}.html"
    _plot(evaluation, png)
    md.write_text(markdown(evaluation) + f"\n![curves]({png.name})\n", encoding="utf-8")
    page.write_text(_html(evaluation, png.name), encoding="utf-8")
    return [png, md, page]
