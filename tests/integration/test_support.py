"""The support skills with real models, and the hybrid/support profile through the gateway."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml

from hybridlm.artifacts import ArtifactError
from hybridlm.evaluation.intent_eval import load_intent_data
from hybridlm.models.encoder import minilm_path
from hybridlm.skills.faq import KnowledgeBase, KnowledgeBaseError, read_faqs
from hybridlm.skills.intent import IntentModel, fit_intent
from hybridlm.skills.sentiment import analyse
from hybridlm.skills.support import SupportPolicy
from hybridlm.request_log import RequestLog
from tests.conftest import DATA
from tests.integration.commands import hybridlm, last_json
from tests.integration.servers import Upstream, hybrid_config, start_gateway, stop

B77_TRAIN = DATA / "intent" / "banking77_small_train.csv"
B77_TEST = DATA / "intent" / "banking77_small_test.csv"
CLINC = DATA / "intent" / "clinc150_small.json"
FAQ_YAML = """\
- question: How do I change my PIN?
  answer: Change it at any ATM with your current PIN.
  intent: change_pin
  also: ["Can I set a new PIN?"]
- question: How old do I have to be to open an account?
  answer: You must be 18 or older.
  intent: age_limit
"""




@pytest.fixture(scope="module")
def intents() -> IntentModel:
    texts, labels = load_intent_data(B77_TRAIN)
    return fit_intent(texts, labels)


def test_sentiment_labels_and_anger() -> None:
    angry = analyse("This is the THIRD time my card was declined, this is RIDICULOUS!!!")
    assert angry.label == "negative" and angry.angry
    assert analyse("How do I order a new card?").label == "neutral"
    happy = analyse("Thanks, that was really helpful!")
    assert happy.label == "positive" and not happy.angry


def test_intent_model_predicts_saves_and_loads(intents: IntentModel, tmp_path: Path) -> None:
    texts, labels = load_intent_data(B77_TEST)
    predicted = [p.label for p in intents.predict(texts)]
    assert sum(p == y for p, y in zip(predicted, labels, strict=True)) / len(labels) > 0.8
    intents.save(tmp_path / "intents.npz")
    again = IntentModel.load(tmp_path / "intents.npz")
    assert [p.label for p in again.predict(texts[:10])] == predicted[:10]


def test_cli_train_and_eval_intent_with_out_of_scope(tmp_path: Path) -> None:
    model = tmp_path / "clinc.npz"
    assert hybridlm("train", "intent", "--data", str(CLINC), "--tune", "0", "--out", str(model)).returncode == 0
    metrics = last_json(hybridlm("eval", "intent", "--model", str(model), "--data", str(CLINC), "--json"))
    assert {"accuracy", "in_scope_accuracy", "oos_recall", "oos_precision", "oos_auroc"} <= set(metrics)
    assert metrics["oos_recall"] > 0.5 and metrics["in_scope_accuracy"] > 0.7
    few = last_json(hybridlm("eval", "intent", "--train", str(B77_TRAIN), "--data", str(B77_TEST), "--shots", "5",
                             "--json"))
    assert few["shots"] == 5 and 0.5 < few["accuracy"] <= 1.0 and "oos_recall" not in few
    assert few["seed"] == 0 and few["encoder"] == "minilm"


def test_intents_with_out_of_scope_rows_tune_by_default_and_judge_scope_by_distance(tmp_path: Path) -> None:
    model_file = tmp_path / "tuned.npz"
    proc = hybridlm("train", "intent", "--data", str(CLINC), "--out", str(model_file))
    assert proc.returncode == 0 and "epoch 3/3" in proc.stdout
    metrics = last_json(hybridlm("eval", "intent", "--model", str(model_file), "--data", str(CLINC), "--json"))
    assert metrics["tune_epochs"] == 3 and metrics["threshold"] < 0  # minus a distance, chosen on val
    assert metrics["oos_recall"] > 0.5 and metrics["in_scope_accuracy"] > 0.7 and metrics["oos_auroc"] > 0.8
    model = IntentModel.load(model_file)
    texts, labels = load_intent_data(CLINC, "test")
    predictions = model.predict(texts)
    scores = np.array([p.scope_score for p in predictions])
    is_oos = np.array(labels) == "oos"
    assert scores[~is_oos].mean() > scores[is_oos].mean()  # out-of-scope messages lie further from every intent
    flagged = [p for p in predictions if p.out_of_scope]
    assert flagged and all("from the nearest intent" in p.scope_reason for p in flagged)


def test_intent_model_with_a_tuned_encoder_but_no_weights_is_refused(tmp_path: Path) -> None:
    model = fit_intent(*load_intent_data(B77_TRAIN))
    model.header["encoders"] = ["tuned"]
    model.save(tmp_path / "broken.npz")
    with pytest.raises(ArtifactError, match="tuned encoder but holds no weights"):
        IntentModel.load(tmp_path / "broken.npz")


def test_intents_on_a_named_encoder_folder_tuned_or_as_it_is(tmp_path: Path) -> None:
    folder = tmp_path / "encoder"
    shutil.copytree(minilm_path(), folder)
    tuned_file = tmp_path / "tuned.npz"
    proc = hybridlm("train", "intent", "--data", str(B77_TRAIN), "--encoder", str(folder), "--tune", "1",
                    "--out", str(tuned_file))
    assert proc.returncode == 0 and "epoch 1/1" in proc.stdout
    assert IntentModel.load(tuned_file).header["encoders"] == ["tuned"]
    tuned = last_json(hybridlm("eval", "intent", "--model", str(tuned_file), "--data", str(B77_TEST), "--json"))
    assert tuned["encoder"] == str(folder.resolve()) and tuned["tune_epochs"] == 1 and tuned["accuracy"] > 0.7
    as_it_is = last_json(hybridlm("eval", "intent", "--train", str(B77_TRAIN), "--data", str(B77_TEST),
                                  "--encoder", str(folder), "--json"))
    assert as_it_is["encoder"] == str(folder.resolve()) and as_it_is["tune_epochs"] == 0
    assert as_it_is["accuracy"] > 0.7
    misused = hybridlm("eval", "intent", "--model", str(tuned_file), "--data", str(B77_TEST), "--shots", "5")
    assert misused.returncode == 2 and "are for training" in misused.stderr
    shutil.rmtree(folder)
    with pytest.raises(ArtifactError, match="encoder folder .* is missing"):
        IntentModel.load(tuned_file)
    proc = hybridlm("eval", "intent", "--model", str(tuned_file), "--data", str(B77_TEST))
    assert proc.returncode == 2 and "is missing" in proc.stderr and "Traceback" not in proc.stderr


def test_bad_knowledge_base_files_name_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "faq.yaml"
    bad.write_text("- question: Where are you?\n  answer: Here.\n- question: Who are you?\n  answer: ''\n")
    with pytest.raises(KnowledgeBaseError, match=r"faq.yaml, line 3: 'answer' must be non-empty"):
        read_faqs(bad)
    broken = tmp_path / "broken.yaml"
    broken.write_text("- question: [unclosed\n")
    with pytest.raises(KnowledgeBaseError, match=r"broken.yaml, line \d+: not valid YAML"):
        read_faqs(broken)
    csv_file = tmp_path / "faq.csv"
    csv_file.write_text("q,a\nhi,hello\n")
    with pytest.raises(KnowledgeBaseError, match="needs columns question,answer"):
        read_faqs(csv_file)
    proc = hybridlm("kb", "add", str(bad))
    assert proc.returncode == 2 and "line 3" in proc.stderr and "Traceback" not in proc.stderr


def test_markdown_and_csv_knowledge_bases_are_read(tmp_path: Path) -> None:
    md = tmp_path / "faq.md"
    md.write_text("# Help\n\n## How do I close my account?\nWrite to us in the app.\n\n## Do you charge fees?\nNo.\n")
    faqs = read_faqs(md)
    assert [(f.question, f.answer, f.line) for f in faqs] == [
        ("How do I close my account?", "Write to us in the app.", 3), ("Do you charge fees?", "No.", 6)]


def test_support_policy_routes_faq_slm_and_llm(intents: IntentModel, tmp_path: Path) -> None:
    (tmp_path / "faq.yaml").write_text(FAQ_YAML)
    policy = SupportPolicy(intents, KnowledgeBase(read_faqs(tmp_path / "faq.yaml"), 0.75))

    def action(text: str) -> tuple[str, str]:
        d = policy.decide([{"role": "user", "content": text}])
        return d.action, d.reason

    assert action("How can I change my PIN?")[0] == "faq"
    assert action("My card still hasn't arrived, where is it?")[0] == "slm"
    angry = action("I am FURIOUS, you LOST my card and nobody answers!!!")
    assert angry[0] == "llm" and "negative sentiment" in angry[1]
    assert action("Please write a summary of my case for the complaints team")[0] == "llm"


def test_slm_answers_with_the_near_faq_entry_as_its_guidance(intents: IntentModel, tmp_path: Path) -> None:
    (tmp_path / "faq.yaml").write_text(FAQ_YAML)
    strict = SupportPolicy(intents, KnowledgeBase(read_faqs(tmp_path / "faq.yaml"), 0.99))  # near misses only
    near = strict.decide([{"role": "user", "content": "I'd like to change my PIN, what do I do?"}])
    assert near.action == "slm" and near.faq is not None and near.reply is None
    note = SupportPolicy.note_for_slm(near)
    assert "about: change pin" in note and "Change it at any ATM with your current PIN." in note
    unrelated = strict.decide([{"role": "user", "content": "My card still hasn't arrived, where is it?"}])
    assert unrelated.action == "slm" and unrelated.faq is None
    assert "about: card arrival" in SupportPolicy.note_for_slm(unrelated)
    assert "help text" not in SupportPolicy.note_for_slm(unrelated)


def test_gateway_support_profile_answers_from_the_kb_without_a_model(upstream: Upstream, intents: IntentModel,
                                                                      tmp_path: Path) -> None:
    (tmp_path / "faq.yaml").write_text(FAQ_YAML)
    intents.save(tmp_path / "intents.npz")
    config = hybrid_config(upstream.base_url)
    config["support"] = {"intent_model": str(tmp_path / "intents.npz"), "kb_files": [str(tmp_path / "faq.yaml")]}
    gateway = start_gateway(tmp_path / "gw", config)
    try:
        def ask(text: str) -> dict:
            reply = httpx.post(gateway.base_url + "/chat/completions", timeout=60, json={
                "model": "hybrid/support", "max_tokens": 8, "messages": [{"role": "user", "content": text}]})
            assert reply.status_code == 200, reply.text
            return reply.json()

        faq = ask("Can I set a new PIN?")
        assert faq["choices"][0]["message"]["content"] == "Change it at any ATM with your current PIN."
        meta = faq["hybridlm"]
        assert (meta["tier"], meta["model"], meta["cost_usd"]) == ("faq", "faq", 0.0)
        assert meta["reason"].startswith("support: FAQ match")
        angry = ask("This is UNACCEPTABLE, my card was stolen and you did NOTHING!!!")["hybridlm"]
        assert angry["tier"] == "llm" and "negative sentiment" in angry["reason"] and angry["cost_usd"] > 0
        routine = ask("When will my new card arrive?")["hybridlm"]
        assert routine["tier"] == "slm" and "routine intent 'card_arrival'" in routine["reason"]
        assert gateway.row(faq["id"])["tier"] == "faq"
    finally:
        stop(gateway.proc)


def test_demo_support_runs_offline_and_writes_its_report(tmp_path: Path) -> None:
    summary = last_json(hybridlm("demo", "support", "--limit", "40", "--answers", "3", "--out", str(tmp_path / "demo"),
                                 "--json"))
    assert summary["queries"] == 40
    assert sum(summary[f"share_{a}"] for a in ("faq", "flow", "slm", "llm")) == pytest.approx(1.0)
    assert summary["all_llm_cost_usd"] > summary["cost_usd"]
    assert (tmp_path / "demo" / "support-demo.png").stat().st_size > 10_000
    assert "Support desk demo" in (tmp_path / "demo" / "support-demo.html").read_text()
    assert summary["answered"] == 3 and "llm" not in summary["answered_by"]  # no LLM configured: nothing sent
    assert summary["answered_cost_usd"] == 0.0


def test_demo_support_sends_escalations_to_the_configured_llm(upstream: Upstream, tmp_path: Path) -> None:
    config = hybrid_config(upstream.base_url)
    config["support"] = {"min_intent_confidence": 0.999}  # hardly any intent is sure enough: most queries escalate
    config_file = tmp_path / "hybridlm.yaml"
    config_file.write_text(yaml.safe_dump(config))
    out = tmp_path / "demo"
    summary = last_json(hybridlm("demo", "support", "--limit", "60", "--answers", "4", "--config", str(config_file),
                                 "--out", str(out), "--json"))
    transcripts = [json.loads(line) for line in (out / "answers.jsonl").read_text().splitlines()]
    assert summary["answered"] == len(transcripts) == 4
    assert sum(summary["answered_by"].values()) == 4 and summary["answered_by"].get("llm", 0) >= 1
    assert summary["answered_cost_usd"] > 0 and summary["escalations_not_sent"] == 0
    sent = [t for t in transcripts if t["tier"] == "llm"]
    assert all(t["answer"] and t["cost_usd"] > 0 and t["reason"].startswith("support:") for t in sent)
    assert "queries answered through the pipeline" in (out / "support-demo.html").read_text()
    log = RequestLog(out / "requests.db")
    try:
        assert {r["tier"] for r in log.recent(10)} == set(summary["answered_by"]) and len(log.recent(10)) == 4
    finally:
        log.close()


def test_bad_flow_files_name_file_and_line(tmp_path: Path) -> None:
    from hybridlm.skills.flows import FlowError, read_flows

    bad = tmp_path / "flows.yaml"
    bad.write_text("- name: f\n  steps:\n    - id: a\n      say: hi\n      goto: nowhere\n")
    with pytest.raises(FlowError, match=r"flows.yaml, line 3: step 'a' goes to unknown step"):
        read_flows(bad)
    bad.write_text("- name: f\n  steps:\n    - id: a\n      say: hi\n      ask: {slot: x}\n")
    with pytest.raises(FlowError, match=r"line 3: 'ask' needs a 'slot' and either 'choices'"):
        read_flows(bad)


def test_flow_runs_across_turns_through_the_gateway_and_escalates_when_left(
        upstream: Upstream, intents: IntentModel, tmp_path: Path) -> None:
    from hybridlm.demo.support import demo_file

    intents.save(tmp_path / "intents.npz")
    config = hybrid_config(upstream.base_url)
    config["support"] = {"intent_model": str(tmp_path / "intents.npz"), "flow_files": [str(demo_file("flows.yaml"))]}
    gateway = start_gateway(tmp_path / "gw", config)
    try:
        def say(text: str, conversation: str) -> dict:
            reply = httpx.post(gateway.base_url + "/chat/completions", timeout=60, json={
                "model": "hybrid/support", "max_tokens": 8, "conversation_id": conversation,
                "messages": [{"role": "user", "content": text}]})
            assert reply.status_code == 200, reply.text
            return reply.json()

        first = say("Where is my card, it should have arrived by now", "c-1")
        assert first["hybridlm"]["tier"] == "flow"
        assert "How many working days" in first["choices"][0]["message"]["content"]
        second = say("I ordered it 9 days ago", "c-1")
        assert "After 9 working days" in second["choices"][0]["message"]["content"]
        third = say("yes please", "c-1")
        assert "new one is on its way" in third["choices"][0]["message"]["content"]
        assert third["hybridlm"]["cost_usd"] == 0.0

        say("Where is my card, it should have arrived by now", "c-2")
        left = say("What's your exchange rate for dollars?", "c-2")["hybridlm"]
        assert left["tier"] == "llm" and "left flow 'card_not_arrived'" in left["reason"]
    finally:
        stop(gateway.proc)


def test_summarize_sends_the_conversation_with_local_facts(gateway) -> None:  # type: ignore[no-untyped-def]
    conversation = [
        {"role": "user", "content": "I was charged £45.50 twice on 12/03 for order ref AB12345, card ending 4242."},
        {"role": "assistant", "content": "I am sorry, let me check."},
        {"role": "user", "content": "This is the second time, I am really ANGRY!!!"},
    ]
    reply = httpx.post(gateway.base_url + "/summarize", timeout=120, json={"messages": conversation, "max_tokens": 16})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["summary"]
    assert body["facts"]["amounts"] == ["£45.50"] and body["facts"]["card_endings"] == ["4242"]
    assert body["facts"]["references"] == ["AB12345"] and body["facts"]["angry"]
    assert body["hybridlm"]["tier"] == "llm" and body["hybridlm"]["cost_usd"] > 0
    assert gateway.row(body["id"])["endpoint"] == "/v1/summarize"
    bad = httpx.post(gateway.base_url + "/summarize", json={"messages": []}, timeout=10)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "messages"
    assert gateway.row(bad.headers["x-hybridlm-request-id"])["http_status"] == 400
