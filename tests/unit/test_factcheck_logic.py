"""The parts of fact-checking that are plain logic: text units, synthetic edits, claim removal."""

from __future__ import annotations

import random

import pytest

from hybridlm.factcheck import text as tx
from hybridlm.factcheck.detector import (
    CONTRADICTED,
    SUPPORTED,
    UNSUPPORTED,
    ClaimVerdict,
    FactReport,
)
from hybridlm.factcheck.edits import EDIT_TYPES, edit
from hybridlm.factcheck.training import FactPair, labelled_rows, synthetic_rows
from hybridlm.rag.grounded import cite, remove_claims, without_citations

CLAIM = "The company was founded in 1998 by John Smith in London and its profits increased."
SOURCE = "Mary Jones met John Smith in Paris. The company was founded in 1998."
OTHER = "The weather in Oslo was cold for most of the winter season that year."


def test_sentences_words_and_stems() -> None:
    assert tx.sentences("It rained. Then it stopped!\nDone") == ["It rained.", "Then it stopped!", "Done"]
    assert tx.sentences("   ") == []
    assert [tx.stem(w) for w in ("branches", "opening", "saturdays", "class", "is")] == \
        ["branch", "open", "saturday", "class", "is"]
    assert tx.names("Then Alice met Bob.", mid_sentence=True) == ["alice", "bob"]
    assert tx.negated(tx.words("He didn't go")) and not tx.negated(tx.words("He went"))


@pytest.mark.parametrize("kind", EDIT_TYPES)
def test_each_edit_changes_the_claim_in_its_own_way(kind: str) -> None:
    edited = edit(CLAIM, SOURCE, OTHER, kind, random.Random(1))
    assert edited and edited != CLAIM
    changed = set(tx.words(edited)) ^ set(tx.words(CLAIM))
    expected = {"entity_swap": lambda: changed & {"mary", "jones", "paris"},
                "number_swap": lambda: any(w.isdigit() for w in changed),
                "negation": lambda: "not" in changed,
                "antonym_swap": lambda: {"increased", "decreased"} <= changed,
                "inserted_fact": lambda: edited.startswith(CLAIM[:-1]) and len(edited) > len(CLAIM)}[kind]
    assert expected(), edited


def test_edits_that_do_not_apply_return_none() -> None:
    rng = random.Random(0)
    assert edit("Rain came.", "", OTHER, "number_swap", rng) is None
    assert edit("Rain came.", "", OTHER, "antonym_swap", rng) is None
    with pytest.raises(ValueError):
        edit(CLAIM, SOURCE, OTHER, "teleport", rng)


def test_training_rows_label_only_the_edited_claims() -> None:
    edited = FactPair("doc", "Rain fell. Snow rose.", 0, "d", ("antonym_swap",), original="Rain fell. Snow fell.")
    rows = labelled_rows([edited])
    assert [(r.claim, r.label) for r in rows] == [("Rain fell.", 1), ("Snow rose.", 0)]
    synthetic = synthetic_rows([FactPair(SOURCE + " " + OTHER, CLAIM, 1, "d"),
                                FactPair(OTHER, "It was cold in Oslo.", 1, "d")])
    kinds = {r.kind for r in synthetic if r.label == 0}
    assert {"entity_swap", "number_swap", "negation", "antonym_swap"} <= kinds
    assert all(r.label == 1 for r in synthetic if not r.kind)


def test_flagged_claims_are_removed_with_their_citations() -> None:
    report = FactReport([ClaimVerdict("A is true.", SUPPORTED, 0.9, "", 0, ""),
                         ClaimVerdict("B is false.", CONTRADICTED, 0.1, "", 0, ""),
                         ClaimVerdict("C is made up.", UNSUPPORTED, 0.2, "", 0, "")])
    kept, removed = remove_claims("A is true [1]. B is false [2]. C is made up [1, 2].", report)
    assert kept == "A is true [1]." and removed == ["B is false [2].", "C is made up [1, 2]."]
    assert without_citations("A [1]. B [1, 2].") == "A. B."
    assert report.score == pytest.approx(0.1) and not report.supported and len(report.flagged) == 2


def test_uncited_supported_claims_get_their_source_number() -> None:
    report = FactReport([ClaimVerdict("Cards arrive in 5 days.", SUPPORTED, 0.9, "", 1, ""),
                         ClaimVerdict("Fees are low.", SUPPORTED, 0.8, "", 0, ""),
                         ClaimVerdict("It rains", UNSUPPORTED, 0.2, "", 0, "")])
    answer = "Cards arrive in 5 days.\nFees are low [1]. It rains"
    assert cite(answer, report) == "Cards arrive in 5 days [2].\nFees are low [1]. It rains"
