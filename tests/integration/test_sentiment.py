"""The sentiment skill: the shipped model, training and evaluating from the command line, and the
support policy escalating an unhappy customer whose words a lexicon reads as neutral."""

from __future__ import annotations

from pathlib import Path

import pytest

from hybridlm.skills.sentiment import SentimentModel, SentimentSkill, analyse, shipped_model_path
from hybridlm.skills.support import SupportPolicy
from tests.conftest import DATA
from tests.integration.commands import hybridlm, last_json

GOEMOTIONS = DATA / "sentiment" / "goemotions"
FACTUAL_COMPLAINT = "My bag did not arrive with my flight and I have called three times already."


@pytest.fixture(scope="module")
def shipped() -> SentimentModel:
    return SentimentModel.load(shipped_model_path())


def test_the_shipped_model_loads_and_scores(shipped: SentimentModel) -> None:
    assert shipped.header["calibration"]["target_recall"] == 0.8
    upset, pleased, plain = shipped.predict(["This is awful, I hate how you treated me.",
                                             "Thank you so much, that was wonderful help!",
                                             "What time does the branch open on Saturday?"])
    assert upset.label == "negative" and upset.unhappy and upset.reader == "learned"
    assert pleased.label == "positive" and not pleased.unhappy
    assert upset.negativity > plain.negativity > pleased.negativity - 0.01
    assert -1 <= pleased.score <= 1 and pleased.score > 0 > upset.score


def test_the_policy_escalates_a_factual_complaint_the_lexicon_calls_neutral(shipped: SentimentModel) -> None:
    assert analyse(FACTUAL_COMPLAINT).label == "neutral"
    lexicon_only = SupportPolicy(None, None).decide([{"role": "user", "content": FACTUAL_COMPLAINT}])
    assert lexicon_only.action == "slm"
    decision = SupportPolicy(None, None, sentiment=SentimentSkill(shipped)).decide(
        [{"role": "user", "content": FACTUAL_COMPLAINT}])
    assert decision.action == "llm" and decision.reason.startswith("negative sentiment (P(negative)")
    assert "signs: repeated, failed" in decision.reason
    calm = SupportPolicy(None, None, sentiment=SentimentSkill(shipped)).decide(
        [{"role": "user", "content": "How do I order a second card for my partner?"}])
    assert calm.action == "slm"


def test_train_then_eval_sentiment_from_the_command_line(tmp_path: Path) -> None:
    model = tmp_path / "sentiment.npz"
    trained = hybridlm("train", "sentiment", "--data", str(GOEMOTIONS / "train.tsv"), "--out", str(model))
    assert trained.returncode == 0, trained.stderr
    assert "escalates at P(negative) >=" in trained.stdout and "on 200 validation messages" in trained.stdout
    metrics = last_json(hybridlm("eval", "sentiment", "--model", str(model), "--data", str(GOEMOTIONS / "test.tsv"),
                                 "--json"))
    assert {"accuracy", "negative_recall", "negative_precision", "negative_f1", "auroc"} <= set(metrics)
    assert metrics["examples"] == 200 and metrics["auroc"] > 0.6 and metrics["accuracy"] > 0.4
    assert SentimentModel.load(model).header["calibration"]["validation"] == "dev.tsv"
    lexicon = last_json(hybridlm("eval", "sentiment", "--lexicon", "--data", str(GOEMOTIONS / "test.tsv"), "--json"))
    assert lexicon["reader"] == "lexicon" and lexicon["threshold"] is None


def test_a_bad_training_file_is_named_with_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "labelled.csv"
    bad.write_text("text,sentiment\nthanks a lot,positive\nwhere is my parcel,neutral\nstill nothing,furious\n")
    proc = hybridlm("train", "sentiment", "--data", str(bad), "--out", str(tmp_path / "m.npz"))
    assert proc.returncode == 2
    assert "labelled.csv, line 4: sentiment 'furious' is not one of negative, neutral, positive" in proc.stderr + proc.stdout
    assert not (tmp_path / "m.npz").exists()
