"""Routers trained on real outcome data with the real local encoder, through the Python API and CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from hybridlm.artifacts import ArtifactError
from hybridlm.evaluation.router_eval import RouterEvaluator, embed, two_model_result
from hybridlm.models.encoder import minilm_path
from hybridlm.routing.cascade import CascadeRouter
from hybridlm.routing.learned import KINDS, EncoderRouter, fit_router, load_router
from hybridlm.routing.outcomes import OutcomeDataError, load_outcomes
from hybridlm.types import Completion, Usage
from tests.conftest import DATA
from tests.integration.commands import hybridlm, last_json

MMLU = DATA / "routellm" / "mmlu"
GSM8K = DATA / "routellm" / "gsm8k_responses.csv"
DC_TRAIN = DATA / "llmrouter" / "dcrouter_train.json"
DC_TEST = DATA / "llmrouter" / "dcrouter_test.json"
HARD = [{"role": "user", "content": "Find the number of real roots of x^4 - 4x^2 + 2 = 0.\nA. 0\nB. 2\nC. 3\nD. 4\nAnswer:"}]


def draft(text: str) -> Completion:
    return Completion(text=text, model="slm", usage=Usage())


def test_loaders_read_every_shipped_format() -> None:
    mmlu = load_outcomes(MMLU)
    assert len(mmlu) == 437
    assert set(mmlu.categories) == {"high_school_mathematics", "marketing", "college_physics", "sociology"}
    gsm = load_outcomes(GSM8K)
    assert gsm.models[gsm.pair()[1]] == "gpt-4-1106-preview"
    dc = load_outcomes(DC_TRAIN)
    assert len(dc.models) == 9 and dc.costs.shape == (400, 9)
    with pytest.raises(OutcomeDataError, match="cannot tell the format"):
        load_outcomes(Path(__file__))


def test_contaminated_prompts_are_dropped(tmp_path: Path) -> None:
    folder = tmp_path / "routellm"
    (folder / "mmlu").mkdir(parents=True)
    (folder / "contaminated").mkdir()
    source = MMLU / "mmlu_marketing.csv"
    (folder / "mmlu" / source.name).write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    clean = load_outcomes(folder / "mmlu")
    leaked = clean.prompts[3]
    (folder / "contaminated" / "mmlu.jsonl").write_text(json.dumps({"eval_prompt": leaked}) + "\n", encoding="utf-8")
    kept = load_outcomes(folder / "mmlu")
    assert len(kept) == len(clean) - 1 and leaked not in kept.prompts


TRAINING_DATA = {"multi": DC_TRAIN, "cascade": GSM8K}


@pytest.mark.parametrize("kind", KINDS)
def test_each_router_trains_saves_loads_and_routes(kind: str, tmp_path: Path) -> None:
    data = load_outcomes(TRAINING_DATA.get(kind, MMLU))
    x = embed(data, "minilm-static") if kind not in ("random", "cascade") else None
    router = fit_router(kind, data, x, "minilm-static", k=20)
    path = tmp_path / f"{kind}.npz"
    router.save(path)
    loaded = load_router(path)
    if isinstance(router, CascadeRouter):
        drafts = data.responses[data.models[0]][:25]
        assert np.allclose(router.score_pairs(data.prompts[:25], drafts), loaded.score_pairs(data.prompts[:25], drafts))  # type: ignore[union-attr]
        score = loaded.verify(HARD, draft("x^2 = 2 so 2 + 2 = 5 roots, maybe"))  # type: ignore[union-attr]
    else:
        prompts = data.prompts[:25]
        assert np.allclose(router.score_texts(prompts), loaded.score_texts(prompts))  # type: ignore[union-attr]
        score = loaded.score(HARD)
    assert 0.0 <= score.value <= 1.0
    assert score.contributions
    if isinstance(loaded, EncoderRouter):
        assert loaded.cheap  # a static encoder and a few hundred neighbours: scored on the event loop


def test_cascade_verifier_doubts_drafts_with_wrong_arithmetic() -> None:
    router = fit_router("cascade", load_outcomes(GSM8K), None, "minilm-static")
    prompt = [{"role": "user", "content": "Tom has 16 apples and eats 3. How many are left?"}]
    good = router.verify(prompt, draft("He has 16 - 3 = 13 apples left.\n#### 13"))  # type: ignore[union-attr]
    bad = router.verify(prompt, draft("He has 16 - 3 = 12 apples left, I think."))  # type: ignore[union-attr]
    assert bad.value > good.value
    assert "equations_wrong" in bad.contributions or "any_equation_wrong" in bad.contributions


def test_learned_router_sends_the_hard_subject_to_the_large_model_more_often(tmp_path: Path) -> None:
    data = load_outcomes(MMLU)
    router = fit_router("ensemble", data, embed(data, "minilm-static"), "minilm-static")
    cats = np.array(data.categories)
    scores = router.score_texts(data.prompts)
    gain = data.scores[:, 1] - data.scores[:, 0]
    by_subject = {c: (scores[cats == c].mean(), gain[cats == c].mean()) for c in set(cats)}
    hardest = max(by_subject, key=lambda c: by_subject[c][1])
    easiest = min(by_subject, key=lambda c: by_subject[c][1])
    assert by_subject[hardest][0] > by_subject[easiest][0]


def test_out_of_fold_scores_are_the_ones_the_evaluation_scores() -> None:
    data = load_outcomes(MMLU)
    evaluator = RouterEvaluator("minilm-static", k=20)
    reported = evaluator.evaluate(data, ["knn"], {}, folds=4, seed=3).two_model[0]
    scores = evaluator.out_of_fold(data, "knn", folds=4, seed=3)
    assert scores.shape == (len(data),)
    assert two_model_result("knn", scores, data.scores[:, 0], data.scores[:, 1]).metrics() == reported.metrics()
    other_folds = evaluator.out_of_fold(data, "knn", folds=4, seed=4)
    assert not np.allclose(scores, other_folds)


def test_corrupt_and_incompatible_router_files_are_clear_errors(tmp_path: Path) -> None:
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"\x00not a zip at all" * 10)
    with pytest.raises(ArtifactError, match="not a router file or corrupt"):
        load_router(junk)
    np.savez(tmp_path / "other.npz", weights=np.zeros(3))
    with pytest.raises(ArtifactError, match="no header"):
        load_router(tmp_path / "other.npz")
    future = tmp_path / "future.npz"
    header = json.dumps({"format": "hybridlm-router", "version": 99, "kind": "knn"}).encode()
    np.savez(future, header=np.frombuffer(header, dtype=np.uint8))
    with pytest.raises(ArtifactError, match="version 99"):
        load_router(future)
    with pytest.raises(ArtifactError, match="no such router file"):
        load_router(tmp_path / "missing.npz")


def test_cli_train_eval_on_unseen_data_and_calibrate(tmp_path: Path) -> None:
    router = tmp_path / "mmlu-router.npz"
    train = hybridlm("train", "router", "--data", str(MMLU), "--out", str(router))
    assert train.returncode == 0, train.stderr
    assert router.is_file()

    unseen = last_json(hybridlm("eval", "router", "--router", str(router), "--data", str(GSM8K), "--json"))
    assert {"apgr", "cpt50", "cpt80"} <= set(unseen)
    assert unseen["routers"]["oracle"]["apgr"] > 1.0

    cv = last_json(hybridlm("eval", "router", "--data", str(MMLU), "--kinds", "knn,random", "--folds", "3",
                            "--json", "--report", str(tmp_path / "report")))
    assert cv["router"] == "knn" and cv["protocol"].startswith("3-fold")
    assert set(cv["routers"]["category alone"]) == {"apgr", "cpt50", "cpt80"}  # MMLU's subjects as a reference
    assert "category alone" not in unseen["routers"]  # a router file alone: nothing to learn categories from
    assert (tmp_path / "report" / "router-mmlu.png").stat().st_size > 10_000
    assert "APGR" in (tmp_path / "report" / "router-mmlu.html").read_text()

    calib = last_json(hybridlm("calibrate", "--router", str(router), "--data", str(MMLU), "--llm-share", "0.3",
                               "--json"))
    assert abs(calib["held_out"]["llm_share"] - 0.3) < 0.1
    assert calib["ci95"]["llm_share"][0] <= calib["held_out"]["llm_share"] <= calib["ci95"]["llm_share"][1]


def test_cli_many_models_reports_aiq_against_every_model() -> None:
    result = last_json(hybridlm("eval", "router", "--data", str(DC_TEST), "--train", str(DC_TRAIN), "--json"))
    assert result["router"] == "multi"
    singles = {m: v["aiq"] for m, v in result["routers"].items() if m not in ("multi", "knn", "random", "oracle")}
    assert len(singles) == 9
    assert result["routers"]["oracle"]["aiq"] >= result["aiq"]


def test_cli_errors_for_bad_router_files_and_data(tmp_path: Path) -> None:
    junk = tmp_path / "junk.npz"
    junk.write_text("nope")
    proc = hybridlm("eval", "router", "--router", str(junk), "--data", str(GSM8K), "--json")
    assert proc.returncode == 2 and "not a router file" in proc.stderr and "Traceback" not in proc.stderr
    proc = hybridlm("train", "router", "--data", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "x.npz"))
    assert proc.returncode == 2 and "no such file" in proc.stderr


def test_routers_read_prompts_with_a_named_encoder_folder(tmp_path: Path) -> None:
    folder = tmp_path / "encoder"
    shutil.copytree(minilm_path(), folder)
    path = tmp_path / "router.npz"
    train = hybridlm("train", "router", "--data", str(MMLU), "--kind", "knn", "--encoder", str(folder),
                     "--out", str(path))
    assert train.returncode == 0, train.stderr
    router = load_router(path)
    assert router.header["encoder"] == str(folder.resolve())  # type: ignore[union-attr]
    assert not router.cheap  # type: ignore[union-attr]  # a transformer pass: scored on a worker
    data = load_outcomes(MMLU)
    same_weights = fit_router("knn", data, embed(data, "minilm"), "minilm")
    prompts = data.prompts[:20]
    assert np.allclose(router.score_texts(prompts), same_weights.score_texts(prompts), atol=1e-3)  # type: ignore[union-attr]
    cv = last_json(hybridlm("eval", "router", "--data", str(MMLU), "--kinds", "knn", "--folds", "3",
                            "--encoder", str(folder), "--json"))
    assert cv["router"] == "knn" and 0.0 < cv["apgr"] < 1.5
    unknown = hybridlm("eval", "router", "--data", str(MMLU), "--kinds", "knn", "--encoder", "no-such-encoder")
    assert unknown.returncode == 2 and "unknown encoder 'no-such-encoder'" in unknown.stderr
    shutil.rmtree(folder)
    gone = hybridlm("eval", "router", "--router", str(path), "--data", str(MMLU), "--json")
    assert gone.returncode == 2 and "not here" in gone.stderr and "Traceback" not in gone.stderr


def test_gateway_config_loads_a_learned_router(tmp_path: Path) -> None:
    data = load_outcomes(MMLU)
    path = tmp_path / "router.npz"
    fit_router("ensemble", data, embed(data, "minilm-static"), "minilm-static").save(path)
    config = tmp_path / "hybridlm.yaml"
    config.write_text(f"tiers: {{slm: {{backend: local}}}}\nrouter: {{kind: learned, artifact: {path}, threshold: 0.4}}\n")
    decision = last_json(hybridlm("route", "--json", "--config", str(config), HARD[0]["content"]))
    assert decision["router"] == "ensemble"
    assert set(decision["features"]) == {"neighbours", "shape", "topic"}
    assert "similar prompts" in decision["reason"]
