"""Long context shrunk before the remote tier reads it: what reaches a recording upstream over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hybridlm.api import HybridLM
from hybridlm.config import parse_config
from tests.integration.servers import RecordingUpstream, hybrid_config, start_recording_upstream, stop

FILLER = [f"Meeting note {i}: the {topic} was discussed and nothing was decided." for i, topic in
          enumerate(["parking", "coffee", "badges", "lease", "party", "printer", "lockers", "plants"] * 4)]
ANSWER = "The Kestrel contract ended in July, which cut APAC revenue by 18%."


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RecordingUpstream]:
    server = start_recording_upstream(tmp_path_factory.mktemp("recording"))
    yield server
    stop(server.proc)


@pytest.fixture(scope="module")
def hybrid(recording: RecordingUpstream) -> Iterator[HybridLM]:
    config = hybrid_config(recording.base_url)
    config["context"] = {"shrink": True, "budget_tokens": 60, "min_tokens": 100}
    config["privacy"] = {"redact": False}  # what is shrunk is under test here, not what is redacted
    with HybridLM(parse_config(config)) as shrinking:
        yield shrinking


def test_a_remote_tier_reads_the_best_sentences_of_long_context(recording: RecordingUpstream,
                                                                hybrid: HybridLM) -> None:
    document = " ".join([*FILLER[:16], ANSWER, *FILLER[16:]])
    messages = [{"role": "system", "content": "Answer from the report."},
                {"role": "user", "content": document},
                {"role": "user", "content": "Why did APAC revenue fall?"}]
    result = hybrid.chat(messages, model="llm")
    sent = recording.recorded()[-1]["messages"]
    assert sent[0] == messages[0] and sent[2] == messages[2]  # the system prompt and the question, whole
    assert ANSWER in sent[1]["content"] and len(sent[1]["content"]) < len(document) / 3
    assert "[16] " + ANSWER in sent[1]["content"]  # its position in the document is shown
    context = result.route["context"]
    assert context["kept_tokens"] <= 60 < context["original_tokens"]


def test_short_requests_and_the_local_tier_are_never_shrunk(recording: RecordingUpstream, hybrid: HybridLM) -> None:
    messages = [{"role": "user", "content": " ".join(FILLER[:3])}, {"role": "user", "content": "Anything decided?"}]
    result = hybrid.chat(messages, model="llm")
    local = hybrid.chat([{"role": "user", "content": " ".join(FILLER)}, *messages[1:]], model="slm", max_tokens=4)
    assert recording.recorded()[-1]["messages"] == messages
    assert "context" not in result.route and "context" not in local.route
