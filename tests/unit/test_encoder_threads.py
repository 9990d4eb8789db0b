"""Encoders are shared by every planning thread: one instance must take calls from many threads at once."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from hybridlm.models.encoder import load_encoder

TEXTS = ["my card was stolen yesterday and I want a refund now", "hello"] * 4


def test_the_static_encoder_takes_calls_from_many_threads_at_once() -> None:
    encoder = load_encoder("minilm-static")
    alone = encoder.encode(TEXTS)
    with ThreadPoolExecutor(8) as pool:  # unguarded, its tokenizer raises "Already borrowed" within a few calls
        results = list(pool.map(lambda _: encoder.encode(TEXTS), range(400)))
    assert all(np.allclose(result, alone) for result in results)
