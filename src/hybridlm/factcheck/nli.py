"""A stronger judge where the user has one: a local NLI cross-encoder (a model fine-tuned on MNLI
or similar, in a folder sentence-transformers can load) reads each claim against its evidence.
Nothing is downloaded: the path must be a local folder."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hybridlm.errors import HybridLMError
from hybridlm.extras import require

ENTAILMENT, CONTRADICTION = "entailment", "contradiction"


class NLIError(HybridLMError):
    """An NLI model folder that cannot be loaded or does not predict entailment and contradiction."""


class NLIJudge:
    def __init__(self, path: Path) -> None:
        if not path.is_dir():
            raise NLIError(f"{path}: no such model folder (an NLI cross-encoder saved on this machine)")
        from hybridlm.models.encoder import offline, quietly

        cross_encoder = require("sentence_transformers").CrossEncoder
        offline()
        try:
            with quietly():
                self._model = cross_encoder(str(path), device="cpu", local_files_only=True)
        except (OSError, ValueError) as err:
            raise NLIError(f"{path}: not a cross-encoder model folder ({err})") from None
        labels = {i: str(name).lower() for i, name in self._model.config.id2label.items()}
        found = {name: i for i, name in labels.items()}
        if ENTAILMENT not in found or CONTRADICTION not in found:
            raise NLIError(f"{path}: its labels {sorted(labels.values())} lack '{ENTAILMENT}' and '{CONTRADICTION}'")
        self._entailment, self._contradiction = found[ENTAILMENT], found[CONTRADICTION]

    def judge(self, premises: Sequence[str], claims: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """P(entailment) and P(contradiction) of each claim given its premise."""
        if not claims:
            return np.zeros(0), np.zeros(0)
        probs = np.asarray(self._model.predict(list(zip(premises, claims, strict=True)), apply_softmax=True,
                                               show_progress_bar=False))
        return probs[:, self._entailment], probs[:, self._contradiction]
