"""The intent model: TF-IDF features and one linear scorer per intent, learned from the
example messages in knowledge/examples/.

Training is a ridge-regression classifier solved exactly in its dual form
(alpha = (K + lambda*I)^-1 Y, W = X^T alpha): deterministic (no random start, no
iteration count), a fraction of a second for a thousand examples, and as accurate as a
linear SVM on short texts. It needs NumPy, which is imported only here, only when
training: answering uses the stored weights with plain Python, so `qopi-bot ask` does
not pay NumPy's import time.

The trained model is stored next to the examples (`knowledge/intent-model.json`) with a
hash of the examples it came from; `qopi-bot knowledge check` retrains it when the
examples change."""

from __future__ import annotations

import base64
import hashlib
import json
import math
from array import array
from operator import itemgetter, mul
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from qopi_bot.core.kb import Example
from qopi_bot.understanding.features import term_counts

MODEL_VERSION = 2
RIDGE_LAMBDA = 0.3  # chosen by 5-fold cross-validation on knowledge/examples (0.2-0.6 within 0.5%)
MIN_DOC_FREQ = 2  # a term seen in one example only memorises it; it does not generalise (and halves the model)
_BLOCK = 4096  # terms per dense block while training


def examples_hash(examples: Sequence[Example]) -> str:
    digest = hashlib.sha256()
    digest.update(f"v{MODEL_VERSION};lambda={RIDGE_LAMBDA};min_df={MIN_DOC_FREQ}".encode())
    for ex in examples:
        digest.update(b"\x00" + ex.intent.encode() + b"\x01" + ex.text.encode())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Prediction:
    intent: str
    score: float  # the winning intent's linear score (about 1.0 for a clear, familiar message)
    margin: float  # how far ahead of the runner-up it is
    runner_up: str | None

    @property
    def confident(self) -> bool:
        return self.score >= 0.1 and self.margin >= 0.25


class IntentModel:
    """Stored weights; `predict` is pure Python and allocation-light."""

    def __init__(self, labels: list[str], vocab: dict[str, int], idf: Sequence[float],
                 weights: array, bias: tuple[float, ...], source_hash: str) -> None:
        self.labels = labels
        self.vocab = vocab
        self.idf = idf
        # Row-major float32: feature i's weights for every label are weights[i*L:(i+1)*L]. Kept
        # flat, as loaded, so start-up builds no per-feature objects.
        self.weights = weights
        # One column per label, so scoring is a C-level map over the message's features per label
        # (about 3x faster than a Python loop over features x labels).
        width = len(labels)
        self._columns = [weights[k::width] for k in range(width)]
        self.bias = bias
        self.source_hash = source_hash

    # ------------------------------------------------------------------ predict
    def scores(self, text: str) -> dict[str, float]:
        counts = term_counts(text)
        active: list[tuple[int, float]] = []
        norm = 0.0
        for term, count in counts.items():
            index = self.vocab.get(term)
            if index is None:
                continue
            value = (1.0 + math.log(count)) * self.idf[index]
            active.append((index, value))
            norm += value * value
        if not norm:
            return dict(zip(self.labels, self.bias))
        scale = 1.0 / math.sqrt(norm)
        values = [value * scale for _, value in active]
        if len(active) == 1:
            index = active[0][0]
            return {label: bias + column[index] * values[0] for label, bias, column in zip(self.labels, self.bias, self._columns)}
        # One C call per label fetches the message's weights (itemgetter over the flat column), then
        # one more multiplies and sums them: about a third faster than fetching them one by one.
        fetch = itemgetter(*[index for index, _ in active])
        totals = [bias + sum(map(mul, fetch(column), values)) for bias, column in zip(self.bias, self._columns)]
        return dict(zip(self.labels, totals))

    def predict(self, text: str) -> Prediction:
        ranked = sorted(self.scores(text).items(), key=lambda kv: (-kv[1], kv[0]))
        (best, top), second = ranked[0], ranked[1] if len(ranked) > 1 else (None, -1.0)
        return Prediction(intent=best, score=top, margin=top - second[1], runner_up=second[0])

    # ------------------------------------------------------------------ storage
    def to_json(self) -> str:
        flat = self.weights
        return json.dumps({
            "version": MODEL_VERSION, "source_hash": self.source_hash, "labels": self.labels,
            "vocab": sorted(self.vocab, key=self.vocab.__getitem__),
            "idf": [round(v, 5) for v in self.idf], "bias": [round(b, 6) for b in self.bias],
            "weights_f32_b64": base64.b64encode(flat.tobytes()).decode("ascii"),
        }, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str) -> IntentModel:
        data = json.loads(raw)
        if data.get("version") != MODEL_VERSION:
            raise ValueError(f"intent model version {data.get('version')!r}, expected {MODEL_VERSION}")
        labels: list[str] = data["labels"]
        flat = array("f")
        flat.frombytes(base64.b64decode(data["weights_f32_b64"]))
        vocab = {term: i for i, term in enumerate(data["vocab"])}
        if len(flat) != len(vocab) * len(labels):
            raise ValueError("intent model is corrupt: weights and vocabulary differ in size")
        return cls(labels, vocab, data["idf"], flat, tuple(data["bias"]), data["source_hash"])


def train(examples: Sequence[Example], source_hash: str | None = None) -> IntentModel:
    """Fit the model on examples (text already normalized by the caller). `source_hash` names
    the examples as staff wrote them (default: these examples)."""
    if not examples:
        raise ValueError("no examples to learn from")
    labels = sorted({ex.intent for ex in examples})
    members = [{ex.intent} for ex in examples]
    # Every intent weighs the same in training, however many examples staff wrote for it: with
    # plain weights the intent with the most examples (eligibility) wins every message the model
    # has not seen the like of.
    per_label = {label: sum(1 for m in members if label in m) for label in labels}
    weights = [len(examples) / (len(labels) * per_label[ex.intent]) for ex in examples]
    return _fit([ex.text for ex in examples], members, labels, [weights],
                source_hash or examples_hash(examples))


def train_multilabel(texts: Sequence[str], members: Sequence[set[str]], labels: Sequence[str],
                     source_hash: str) -> IntentModel:
    """One yes/no scorer per label over shared features: a message may carry several labels or
    none. Each label is balanced on its own (its few positives weigh as much as the rest), so a
    label's score above 0 reads "more like the messages that state it than like the others"."""
    if not texts:
        raise ValueError("no examples to learn from")
    n = len(texts)
    labels = sorted(labels)
    weights = []
    for label in labels:
        positives = sum(1 for m in members if label in m) or 1
        weights.append([n / (2 * positives) if label in m else n / (2 * max(1, n - positives)) for m in members])
    return _fit(list(texts), [set(m) for m in members], labels, weights, source_hash)


def _fit(texts: list[str], members: list[set[str]], labels: list[str], sample_weights: list[list[float]],
         source_hash: str) -> IntentModel:
    """Ridge regression in dual form over TF-IDF rows. One weight vector per example is shared by
    every label (a single-label model), or there is one per label (yes/no scorers)."""
    import numpy as np  # only training needs it

    docs = [term_counts(text) for text in texts]
    df: dict[str, int] = {}
    for counts in docs:
        for term in counts:
            df[term] = df.get(term, 0) + 1
    terms = sorted(t for t, n in df.items() if n >= MIN_DOC_FREQ)
    vocab = {t: i for i, t in enumerate(terms)}
    n_docs = len(docs)
    idf = [math.log((1 + n_docs) / (1 + df[t])) + 1.0 for t in terms]

    # The TF-IDF matrix, L2-normalised rows, kept sparse as (row, column, value) triples: dense, it
    # would be hundreds of megabytes once staff have written a few thousand examples.
    r_idx: list[int] = []
    c_idx: list[int] = []
    vals: list[float] = []
    for row, counts in enumerate(docs):
        cols = [vocab[t] for t in counts if t in vocab]
        values = [(1.0 + math.log(counts[t])) * idf[vocab[t]] for t in counts if t in vocab]
        norm = math.sqrt(sum(v * v for v in values)) or 1.0
        r_idx += [row] * len(cols)
        c_idx += cols
        vals += [v / norm for v in values]
    rows_a, cols_a, vals_a = np.array(r_idx), np.array(c_idx), np.array(vals)

    def dense_block(start: int, end: int) -> Any:
        """Columns start..end as a dense documents x block matrix (a few MB)."""
        block = np.zeros((n_docs, end - start))
        mask = (cols_a >= start) & (cols_a < end)
        block[rows_a[mask], cols_a[mask] - start] = vals_a[mask]
        return block

    y = -np.ones((n_docs, len(labels)))
    for row, member in enumerate(members):
        for label in member:
            y[row, labels.index(label)] = 1.0
    # K = X X^T, then W = X^T alpha, one block of terms at a time.
    spans = [(start, min(start + _BLOCK, len(terms))) for start in range(0, len(terms), _BLOCK)]
    kernel = np.zeros((n_docs, n_docs))
    for start, end in spans:
        block = dense_block(start, end)
        kernel += block @ block.T
    # Weighted ridge in dual form: alpha = (K + lambda*D^-1)^-1 (Y - b), D the per-example weights;
    # b the weighted mean target, so balanced weights give every label the same footing.
    if len(sample_weights) == 1:
        sw = np.array(sample_weights[0])
        bias = (sw[:, None] * y).sum(axis=0) / sw.sum()
        alpha = np.linalg.solve(kernel + RIDGE_LAMBDA * np.diag(1.0 / sw), y - bias)
    else:
        columns, biases = [], []
        for k, weights_k in enumerate(sample_weights):
            sw = np.array(weights_k)
            b = float((sw * y[:, k]).sum() / sw.sum())
            columns.append(np.linalg.solve(kernel + RIDGE_LAMBDA * np.diag(1.0 / sw), y[:, k] - b))
            biases.append(b)
        alpha, bias = np.stack(columns, axis=1), np.array(biases)
    w = np.zeros((len(terms), len(labels)))
    for start, end in spans:
        w[start:end] = dense_block(start, end).T @ alpha
    weights = array("f")
    weights.frombytes(np.ascontiguousarray(w, dtype=np.float32).tobytes())
    return IntentModel(labels, vocab, idf, weights, tuple(float(b) for b in bias), source_hash)
