"""Skill commands: train and evaluate intents and sentiment, the knowledge base, the support demo."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.table import Table

from hybridlm.cli.common import ConfigOption, JsonOption, app, console, fail, load_cli_config, print_metrics
from hybridlm.cli.lab import eval_app, train_app

if TYPE_CHECKING:
    from hybridlm.skills.intent import IntentModel

ShotsOption = Annotated[Optional[int], typer.Option(help="Train on this many examples per intent (few-shot).")]
OosOption = Annotated[float, typer.Option(help="Out-of-scope recall to reach (with 95% confidence) when choosing the "
                                          "threshold on validation data (CLINC150 layout).")]
TuneOption = Annotated[Optional[int], typer.Option(
    "--tune", min=0, help="Tune the encoder to the intents for this many epochs first (minutes of CPU; sharper "
    "out-of-scope detection). Default: 3 when the data has out-of-scope rows, else 0.")]
EncoderOption = Annotated[Optional[Path], typer.Option(
    "--encoder", file_okay=False, exists=True,
    help="A local sentence-transformers model folder to use instead of MiniLM (e.g. all-mpnet-base-v2: "
    "more accurate with few examples, about 9x slower a query). The model file names it; keep it in place.")]
SeedOption = Annotated[int, typer.Option(help="Seed of the few-shot sample and of tuning.")]


@dataclass(frozen=True)
class IntentTraining:
    """The training choices `train intent` and `eval intent --train` share."""

    shots: int | None
    oos_recall: float
    tune: int | None
    encoder: Path | None
    seed: int


def _train(data: Path, choices: IntentTraining) -> IntentModel:
    from hybridlm.errors import HybridLMError
    from hybridlm.evaluation.intent_eval import load_intent_data, sample_shots
    from hybridlm.skills.intent import OUT_OF_SCOPE, choose_threshold, default_tune_epochs, fit_intent

    try:
        texts, labels = load_intent_data(data, "train")
        if choices.shots:
            texts, labels = sample_shots(texts, labels, choices.shots, choices.seed)
        epochs = default_tune_epochs(labels) if choices.tune is None else choices.tune
        with console.status(f"Training on {len(texts)} examples of {len(set(labels))} intents...", spinner="dots"):
            model = fit_intent(texts, labels, name=data.name, tune_epochs=epochs, base=choices.encoder,
                               seed=choices.seed, progress=lambda epoch, loss: console.print(
                                   f"tuning the encoder: epoch {epoch}/{epochs}, loss {loss:.3f}"))
            model.header["trained_on"] |= {"shots": choices.shots, "seed": choices.seed}
            if data.suffix == ".json":
                val_texts, val_labels = load_intent_data(data, "val")
                if OUT_OF_SCOPE in val_labels:
                    model.threshold = choose_threshold(model, val_texts, val_labels, choices.oos_recall)
    except HybridLMError as err:
        fail(str(err), 2)
    return model


@train_app.command("intent")
def train_intent(
    data: Annotated[Path, typer.Option("--data", "-d", help="text,category CSV (BANKING77 layout) or CLINC150 JSON.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Intent model file to write (.npz).")],
    shots: ShotsOption = None,
    oos_recall: OosOption = 0.85,
    tune: TuneOption = None,
    encoder: EncoderOption = None,
    seed: SeedOption = 0,
) -> None:
    """Train an intent classifier with out-of-scope detection; save it as a safe, versioned file."""
    model = _train(data, IntentTraining(shots, oos_recall, tune, encoder, seed))
    model.save(out)
    console.print(f"trained {len(model.classes)} intents on {model.header['trained_on']['examples']} examples, "
                  f"out-of-scope threshold {model.threshold:.3f} -> {out}")


@eval_app.command("intent")
def eval_intent(
    data: Annotated[Path, typer.Option("--data", "-d", help="Test data: text,category CSV or CLINC150 JSON (its "
                                       "test split).")],
    model_path: Annotated[Optional[Path], typer.Option("--model", "-m", help="A trained intent model file.")] = None,
    train: Annotated[Optional[Path], typer.Option(help="Train on this file first instead of --model.")] = None,
    shots: ShotsOption = None,
    oos_recall: OosOption = 0.85,
    tune: TuneOption = None,
    encoder: EncoderOption = None,
    seed: SeedOption = 0,
    as_json: JsonOption = False,
) -> None:
    """Accuracy (and, with out-of-scope rows, in-scope accuracy and out-of-scope recall/precision),
    and the share handled locally at 97% accuracy."""
    from hybridlm.errors import HybridLMError
    from hybridlm.evaluation.intent_eval import evaluate_intent, load_intent_data
    from hybridlm.skills.intent import IntentModel

    if (model_path is None) == (train is None):
        fail("give --model FILE or --train FILE", 2)
    if model_path and (shots or tune is not None or encoder or seed):
        fail("--shots, --tune, --encoder and --seed are for training (with --train); a model file keeps its own", 2)
    try:
        if model_path:
            model = IntentModel.load(model_path)
        else:
            model = _train(train, IntentTraining(shots, oos_recall, tune, encoder, seed))  # type: ignore[arg-type]
        texts, labels = load_intent_data(data, "test")
        metrics = evaluate_intent(model, texts, labels)
    except HybridLMError as err:
        fail(str(err), 2)
    metrics["data"] = data.name
    trained_on = model.header["trained_on"]
    metrics |= {"shots": trained_on.get("shots"), "seed": trained_on.get("seed"),
                "tune_epochs": trained_on.get("tune_epochs", 0), "encoder": model.header.get("base_encoder", "minilm")}
    if as_json:
        print(json.dumps(metrics))
        return
    table = Table("metric", "value")
    for key in ("examples", "accuracy", "in_scope_accuracy", "oos_recall", "oos_precision", "oos_auroc",
                "handled_locally_at_97"):
        if key in metrics:
            table.add_row(key, str(metrics[key]))
    console.print(table)
    curve = ", ".join(f"{100 * s:.0f}%: {a:.3f}" for s, a in metrics["selective_curve"][::4])
    console.print(f"handled locally (most confident first) -> accuracy: {curve}")


@train_app.command("sentiment")
def train_sentiment(
    data: Annotated[Path, typer.Option("--data", "-d", help="GoEmotions group .tsv (its train split) or a "
                                       "text,sentiment CSV (negative / neutral / positive).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Sentiment model file to write (.npz).")],
    val: Annotated[Optional[Path], typer.Option(help="Validation data for the escalation threshold (default: "
                                                "dev.tsv beside a GoEmotions train.tsv, else a fifth of --data).")] = None,
    target_recall: Annotated[float, typer.Option(min=0.05, max=0.999, help="Share of negative messages to escalate, "
                                                 "reached with 95% confidence on the validation data.")] = 0.8,
) -> None:
    """Train the learned sentiment reader on labelled messages and calibrate when it escalates."""
    from hybridlm.errors import HybridLMError
    from hybridlm.skills.sentiment_data import hold_out, load_sentiment_data, split_file
    from hybridlm.skills.sentiment_training import choose_threshold, fit_sentiment

    try:
        train = load_sentiment_data(data)
        val_path = val or split_file(data, "val")
        if val_path:
            validation = load_sentiment_data(val_path)
        else:
            train, validation = hold_out(train, 5)
        with console.status(f"Training on {len(train)} messages...", spinner="dots") as status:
            model = fit_sentiment(train, progress=status.update)
            calibration = choose_threshold(model, validation, target_recall)
    except (HybridLMError, ValueError) as err:
        fail(str(err), 2)
    model.save(out)
    console.print(f"trained on {len(train)} messages; escalates at P(negative) >= {calibration['threshold']:.3f}: "
                  f"recall {calibration['validation_recall']:.3f}, precision {calibration['validation_precision']:.3f} "
                  f"on {len(validation)} validation messages -> {out}")


@eval_app.command("sentiment")
def eval_sentiment(
    data: Annotated[Path, typer.Option("--data", "-d", help="GoEmotions group .tsv or a text,sentiment CSV.")],
    model_path: Annotated[Optional[Path], typer.Option("--model", "-m", help="A sentiment model file (default: "
                                                       "the shipped one, trained on GoEmotions).")] = None,
    lexicon: Annotated[bool, typer.Option("--lexicon", help="Score VADER's lexicon alone instead.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Three-class accuracy, and recall, precision, F1 and AUROC for negative messages (the escalations)."""
    from hybridlm.errors import HybridLMError
    from hybridlm.evaluation.sentiment_eval import evaluate_sentiment
    from hybridlm.skills.sentiment import SentimentModel, SentimentSkill, shipped_model_path
    from hybridlm.skills.sentiment_data import load_sentiment_data

    if lexicon and model_path:
        fail("give --model FILE or --lexicon, not both", 2)
    try:
        skill = SentimentSkill(None if lexicon else SentimentModel.load(model_path or shipped_model_path()))
        metrics = evaluate_sentiment(skill, load_sentiment_data(data))
    except HybridLMError as err:
        fail(str(err), 2)
    metrics["data"] = data.name
    print_metrics(metrics, as_json)


kb_app = typer.Typer(help="The FAQ knowledge base: confident matches are answered with no model call.",
                     no_args_is_help=True)
app.add_typer(kb_app, name="kb")


@kb_app.command("add")
def kb_add(
    files: Annotated[list[Path], typer.Argument(help="FAQ files: .yaml (question/answer/also), .csv, .md.")],
    config: ConfigOption = None,
) -> None:
    """Add FAQ files to the knowledge base (a file added again replaces its earlier entries)."""
    from hybridlm.errors import HybridLMError
    from hybridlm.skills.faq import KB_FILE, KnowledgeBase

    store = load_cli_config(config).resolved_data_dir() / KB_FILE
    for path in files:
        try:
            count = KnowledgeBase.add_file(store, path)
        except HybridLMError as err:
            fail(str(err), 2)
        console.print(f"{path}: {count} question-answer pairs -> {store}")


@kb_app.command("ask")
def kb_ask(
    question: Annotated[str, typer.Argument(help="A customer's message.")],
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """The best FAQ match, its similarity, and whether it clears the threshold."""
    from hybridlm.skills.build import support_policy

    policy = support_policy(load_cli_config(config))
    if policy.kb is None:
        fail("the knowledge base is empty: add files with `hybridlm kb add FILE`", 1)
    match = policy.kb.best([question])[0]
    assert match is not None
    answered = match.similarity >= policy.kb.threshold
    if as_json:
        print(json.dumps({"question": match.faq.question, "answer": match.faq.answer, "similarity": match.similarity,
                          "threshold": policy.kb.threshold, "answered": answered, "source": match.faq.source,
                          "line": match.faq.line}))
        return
    verdict = "answered from the knowledge base" if answered else "too weak: the models take it"
    console.print(f"{match.similarity:.3f} vs threshold {policy.kb.threshold:.2f}: {verdict}")
    console.print(f"[bold]{match.faq.question}[/bold] ({match.faq.source}, line {match.faq.line})")
    console.print(match.faq.answer, highlight=False, markup=False)


demo_app = typer.Typer(help="Runnable demonstrations on bundled data.", no_args_is_help=True)
app.add_typer(demo_app, name="demo")


@demo_app.command("support")
def demo_support(
    limit: Annotated[Optional[int], typer.Option(help="Only the first N test queries.")] = None,
    out: Annotated[Path, typer.Option(help="Folder for the HTML report and PNG plots.")] = Path("support-demo"),
    answers: Annotated[int, typer.Option(
        min=0, help="Also answer N of the queries (spread over the stream) for real through the gateway's pipeline: FAQ and flow replies, "
                    "the embedded SLM's answers, escalations sent to the configured LLM (none configured: the SLM "
                    "answers them, marked). Logged to OUT/requests.db.")] = 0,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """A sample bank's support desk over BANKING77's test queries: share handled by FAQ / SLM / LLM,
    local accuracy, cost against all-LLM, latency, top escalation reasons. Offline unless an LLM is configured
    and --answers is given."""
    from rich.progress import Progress

    from hybridlm.demo.report import write_demo_report
    from hybridlm.demo.support import demo_file, run_demo
    from hybridlm.errors import HybridLMError
    from hybridlm.evaluation.intent_eval import load_intent_data

    cfg = load_cli_config(config)
    total = limit or len(load_intent_data(demo_file("banking77_test.csv"))[0])
    total += min(answers, total)
    try:
        with Progress(console=console, transient=True, disable=as_json) as bar:
            task = bar.add_task("Loading the sample bank...", total=total)

            def say(message: str) -> None:
                bar.update(task, description=message)

            def step() -> None:
                bar.update(task, advance=1)

            result = run_demo(cfg, limit, say, step, answers, out / "requests.db")
    except HybridLMError as err:
        fail(str(err), 2)
    paths = write_demo_report(result, out)
    print_metrics(result.summary(), as_json)
    if as_json:
        return
    for p in paths:
        console.print(f"wrote {p}")


@demo_app.command("assistant")
def demo_assistant(
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N requests.")] = None,
    out: Annotated[Path, typer.Option(help="Folder for report.md and the request log (requests.db).")] = Path(
        "assistant-demo"),
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """A voice assistant's requests ("wake me up at 6:45", "play some jazz", "plan a trip to Japan, then...")
    answered with function calls through `model: hybrid`: what the local model decides and calls, what goes to
    the LLM and why, and whether each outcome is right. Offline unless an LLM is configured."""
    from rich.markup import escape
    from rich.progress import Progress

    from hybridlm.demo import assistant as demo
    from hybridlm.errors import HybridLMError

    cfg = load_cli_config(config)
    try:
        requests = len(demo.load_assistant_data().requests)
        with Progress(console=console, transient=True, disable=as_json) as bar:
            task = bar.add_task("Loading the assistant...", total=min(limit or requests, requests))

            def say(message: str) -> None:
                bar.update(task, description=message)

            def step() -> None:
                bar.update(task, advance=1)

            result = demo.run_assistant(cfg, limit, out / "requests.db", say, step)
    except HybridLMError as err:
        fail(str(err), 2)
    report = demo.write_assistant_report(result, out)
    if as_json:
        print_metrics(result.summary() | {"rows": [o.as_dict() for o in result.outcomes]}, as_json)
        return
    table = Table("request", "outcome", "right?", "ms", title="assistant requests")
    for outcome in result.outcomes:
        table.add_row(escape(outcome.text), escape(outcome.shown()), "yes" if outcome.right else "[red]no[/red]",
                      f"{outcome.latency_ms:.0f}")
    console.print(table)
    print_metrics(result.summary(), as_json)
    console.print(f"wrote {report} and {out / 'requests.db'}")
