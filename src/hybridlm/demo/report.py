"""The support demo's report: a summary table, three plots and an HTML page."""

from __future__ import annotations

import html
import json
from pathlib import Path

from hybridlm.demo.support import ACTIONS, DemoResult
from hybridlm.extras import require


def write_demo_report(result: DemoResult, folder: Path) -> list[Path]:
    require("matplotlib").use("Agg")
    plt = require("matplotlib.pyplot")

    folder.mkdir(parents=True, exist_ok=True)
    summary = result.summary()
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    shares = [summary[f"share_{k}"] for k in ACTIONS]
    axes[0].bar(["FAQ", "flow", "SLM", "LLM"],
                [100 * float(s) for s in shares], color=["#4c9", "#9c4", "#49c", "#c74"])  # type: ignore[arg-type]
    axes[0].set_ylabel("% of queries (FAQ and flow: no model call)")
    axes[0].set_title(f"Who handled {result.queries} queries (local accuracy {result.local_accuracy:.1%})")
    axes[1].hist(result.latencies_ms, bins=40, color="#49c")
    axes[1].set_xlabel("decision latency per query (ms): sentiment + FAQ + intent")
    axes[1].set_title(f"p50 {summary['latency_p50_ms']} ms, p95 {summary['latency_p95_ms']} ms")
    reasons = result.reasons.most_common(6)
    axes[2].barh([r for r, _ in reasons][::-1], [n for _, n in reasons][::-1], color="#c74")
    axes[2].set_title("top escalation reasons")
    fig.tight_layout()
    png = folder / "support-demo.png"
    fig.savefig(png, dpi=100)
    plt.close(fig)
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>" for k, v in summary.items())
    written = [png]
    if result.transcripts:
        answers = folder / "answers.jsonl"
        answers.write_text("".join(json.dumps(t.as_dict()) + "\n" for t in result.transcripts), encoding="utf-8")
        written.append(answers)
    page = folder / "support-demo.html"
    page.write_text(
        "<!doctype html><meta charset=utf-8><title>hybridlm support demo</title>"
        "<body style='font-family:sans-serif;max-width:80em;margin:auto'><h1>Support desk demo</h1>"
        "<p>BANKING77 test queries through the sample bank's support policy. Costs price every escalation "
        f"at ${result.price.input}/{result.price.output} per million input/output tokens.</p>"
        f"<table border=1 cellpadding=4>{rows}</table><p><img src='{png.name}' style='max-width:100%'></p>"
        f"{_transcript_table(result)}</body>",
        encoding="utf-8")
    return [*written, page]


def _transcript_table(result: DemoResult) -> str:
    if not result.transcripts:
        return ""
    head = "".join(f"<th>{h}</th>" for h in ("query", "true intent", "answered by", "why", "answer", "ms", "cost $"))
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in (
            t.query, t.true_intent, f"{t.tier} (escalation not sent: {t.fallback})" if t.fallback else t.tier,
            t.reason, t.answer, t.latency_ms, t.cost_usd)) + "</tr>"
        for t in result.transcripts)
    return (f"<h2>{len(result.transcripts)} queries answered through the pipeline</h2>"
            f"<table border=1 cellpadding=4><tr>{head}</tr>{rows}</table>")
