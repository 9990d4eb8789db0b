import pytest
from pydantic import ValidationError

from hybridlm.config import ConfigError, RouterConfig, parse_config
from hybridlm.plugins import check_plugins
from hybridlm.routing import HeuristicRouter
from hybridlm.routing.base import last_user_text, message_text

router = HeuristicRouter()


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def test_routine_question_scores_low_and_complex_request_scores_high() -> None:
    simple = router.score([user("What are your opening hours?")])
    complex_ = router.score([user(
        "Compare microservices and a monolith for a 20-person startup, analyze the trade-offs, "
        "and give me a step by step migration plan with risks for each step."
    )])
    assert simple.value < 0.2
    assert complex_.value > 0.7
    assert {"analytical", "multi_step"} <= set(complex_.contributions)


def test_keywords_match_whole_words_only() -> None:
    score = router.score([user("Give me an explanation of the barcode on my card")])
    assert "multi_step" not in score.contributions  # 'plan' inside 'explanation'
    assert "code" not in score.contributions  # 'code' inside 'barcode'


def test_creative_request_crosses_default_threshold() -> None:
    assert router.score([user("Write a poem about the sea")]).value >= 0.5


def test_conversation_depth_adds_weight() -> None:
    one = router.score([user("and the refund?")])
    deep = router.score([user("hi"), {"role": "assistant", "content": "hello"}, user("my card"),
                         {"role": "assistant", "content": "ok"}, user("and the refund?")])
    assert deep.contributions["conversation_depth"] == 0.1
    assert deep.value > one.value


def test_explain_lists_largest_parts_with_evidence() -> None:
    text = router.score([user("Please analyze and compare these two contracts in detail")]).explain()
    assert text.startswith("analytical (")
    assert "'compare'" in text


def test_score_is_clipped_to_unit_interval() -> None:
    huge = " ".join(["analyze compare evaluate step by step write a poem python code calculate summarize?"] * 50)
    assert router.score([user(huge)]).value == 1.0


def test_message_text_reads_content_parts() -> None:
    msg = {"role": "user", "content": [{"type": "text", "text": "hello"}, {"type": "image_url", "image_url": {}}]}
    assert message_text(msg) == "hello"
    assert last_user_text([msg, {"role": "assistant", "content": "x"}]) == "hello"


def test_unknown_router_kind_is_refused() -> None:
    with pytest.raises(ConfigError, match="router.kind: unknown router 'magic'"):
        check_plugins(parse_config({"router": {"kind": "magic"}}), "test")
    with pytest.raises(ValidationError, match="needs 'artifact'"):
        RouterConfig(kind="learned")
