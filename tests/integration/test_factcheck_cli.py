"""Fact-checking and chunk grading from the command line, with the real encoder and shipped models."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import DATA
from tests.integration.commands import hybridlm, last_json

SUMMEDITS = DATA / "hallucination" / "summedits"
HALUEVAL = DATA / "hallucination" / "halueval" / "qa_small.jsonl"




def test_factcheck_command_reads_documents_and_labels_claims() -> None:
    report = last_json(hybridlm("factcheck", "New cards arrive within 5 working days in the UK. Cards arrive by "
                                "drone in 2 hours.", "-x", str(DATA / "docs" / "cards.md"), "--json"))
    labels = [c["label"] for c in report["claims"]]
    assert labels[0] == "supported" and labels[1] != "supported"
    assert "5 working days" in report["claims"][0]["evidence"]


def test_eval_factcheck_never_scores_a_detector_on_what_it_read() -> None:
    metrics = last_json(hybridlm("eval", "factcheck", "--data", str(SUMMEDITS / "summedits_news.json"), "--json"))
    assert 0.0 <= metrics["balanced_accuracy"] <= 1.0 and 0.0 <= metrics["auroc"] <= 1.0
    assert metrics["documents_seen_in_training"] == 0 and "news" not in metrics["detector_trained_on"]
    assert set(metrics["missed_by_edit_type"]) <= {"entity_modification", "antonym_swap",
                                                   "negation_insertion_removal", "hallucinated_fact_insertion"}


def test_eval_factcheck_on_halueval_sets_the_traps_beside_it() -> None:
    metrics = last_json(hybridlm("eval", "factcheck", "--data", str(HALUEVAL), "--json"))
    assert metrics["pairs"] == 80
    assert {"auroc", "length_only_auroc", "token_overlap_auroc"} <= metrics.keys()
    assert metrics["length_matched"]["pairs"] > 0
    assert metrics["auroc"] > 0.8  # the detector separates right from hallucinated answers here


def test_leave_one_domain_out_and_a_trained_detector_file(tmp_path: Path) -> None:
    lodo = last_json(hybridlm("eval", "factcheck", "--data", str(SUMMEDITS), "--json"))
    assert set(lodo["domains"]) == {"news", "samsum"} and "balanced_accuracy" in lodo
    model = tmp_path / "fc.npz"
    proc = hybridlm("train", "factcheck", "--data", str(SUMMEDITS), "--leave-out", "news", "--out", str(model))
    assert proc.returncode == 0, proc.stderr
    scored = last_json(hybridlm("eval", "factcheck", "--data", str(SUMMEDITS / "summedits_news.json"), "--model",
                                str(model), "--json"))
    assert scored["detector_trained_on"] == ["samsum"] and scored["documents_seen_in_training"] == 0
    seen = last_json(hybridlm("eval", "factcheck", "--data", str(SUMMEDITS / "summedits_samsum.json"), "--model",
                              str(model), "--json"))
    assert seen["documents_seen_in_training"] > 0  # said, not hidden


def test_bad_models_and_data_get_clear_errors(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"not a zip file")
    proc = hybridlm("factcheck", "x", "-x", "y", "--model", str(corrupt))
    assert proc.returncode == 2 and "corrupt" in proc.stderr and "Traceback" not in proc.stderr
    bad = tmp_path / "bad.json"
    bad.write_text('[{"text": "no such layout"}]')
    proc = hybridlm("eval", "factcheck", "--data", str(bad))
    assert proc.returncode == 2 and "neither the SummEdits layout" in proc.stderr
    proc = hybridlm("eval", "grading", "--data", str(bad))
    assert proc.returncode == 2 and "HaluEval QA" in proc.stderr


def test_grading_eval_and_training(tmp_path: Path) -> None:
    metrics = last_json(hybridlm("eval", "grading", "--data", str(HALUEVAL), "-k", "3", "--json"))
    assert metrics["questions"] == 40 and metrics["chunks"] == 120
    assert metrics["recall_at_3"] > 0.8 and metrics["precision"] > 0.5 and metrics["recall"] > 0.5
    grader = tmp_path / "grader.npz"
    assert hybridlm("train", "grader", "--data", str(HALUEVAL), "--out", str(grader)).returncode == 0
    given = last_json(hybridlm("eval", "grading", "--data", str(HALUEVAL), "--model", str(grader), "--json"))
    assert given["protocol"] == "given grader" and given["recall"] > 0.5


def _nli_folder(path: Path, labels: dict[int, str]) -> Path:
    """A cross-encoder in NLI shape built from the packaged MiniLM (its head untrained): enough to
    test that a user's local NLI model is loaded and used, not how good one is."""
    from sentence_transformers import CrossEncoder

    from hybridlm.models.encoder import minilm_path

    model = CrossEncoder(str(minilm_path()), num_labels=len(labels), device="cpu", local_files_only=True)
    model.config.id2label = labels
    model.config.label2id = {v: k for k, v in labels.items()}
    model.save(str(path))
    return path


def test_a_local_nli_model_scores_the_claims(tmp_path: Path) -> None:
    nli = _nli_folder(tmp_path / "nli", {0: "contradiction", 1: "entailment", 2: "neutral"})
    context = str(DATA / "docs" / "cards.md")
    answer = "New cards arrive within 5 working days in the UK. Frozen cards decline every payment."
    shipped = last_json(hybridlm("factcheck", answer, "-x", context, "--json"))
    judged = last_json(hybridlm("factcheck", answer, "-x", context, "--nli", str(nli), "--json"))
    assert [c["evidence"] for c in judged["claims"]] == [c["evidence"] for c in shipped["claims"]]
    assert [c["score"] for c in judged["claims"]] != [c["score"] for c in shipped["claims"]]
    assert all(0.0 <= c["score"] <= 1.0 for c in judged["claims"])
    wrong = _nli_folder(tmp_path / "sentiment", {0: "negative", 1: "positive"})
    proc = hybridlm("factcheck", answer, "-x", context, "--nli", str(wrong))
    assert proc.returncode == 2 and "lack 'entailment'" in proc.stderr
    proc = hybridlm("factcheck", answer, "-x", context, "--nli", str(tmp_path / "missing"))
    assert proc.returncode == 2 and "no such model folder" in proc.stderr
