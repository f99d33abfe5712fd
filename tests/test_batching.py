"""Micro-batching: concurrent callers' texts share model runs and get exactly their own vectors."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from headroom_mcp.store.batching import Coalescing


class _Held:
    """The real embedder, whose first run waits until ``waiting`` other callers are queued."""

    def __init__(self, inner, waiting: int):
        self.inner, self.model_id, self.calibration, self.waiting = inner, inner.model_id, inner.calibration, waiting
        self.outer: Coalescing | None = None
        self.batches: list[list[str]] = []
        self.fail_on: str | None = None

    def embed(self, texts):
        if not self.batches:
            while len(self.outer._queue) < self.waiting:
                threading.Event().wait(0.001)
        self.batches.append(list(texts))
        if self.fail_on in texts:
            raise RuntimeError("model run failed")
        return self.inner.embed(texts)


def _concurrently(coalescing: Coalescing, inputs: list[list[str]]) -> list[object]:
    out: list[object] = [None] * len(inputs)

    def call(n: int) -> None:
        try:
            out[n] = coalescing.embed(inputs[n])
        except Exception as exc:
            out[n] = exc

    threads = [threading.Thread(target=call, args=(n,)) for n in range(len(inputs))]
    threads[0].start()
    while not coalescing._running:  # the first caller holds the model
        threading.Event().wait(0.001)
    for t in threads[1:]:
        t.start()
    for t in threads:
        t.join(60)
    return out


def _inputs() -> list[list[str]]:
    return [["the api listens on port 8080"], ["deploys happen on Fridays", "tests run with pytest -x"],
            ["we use uv, not pip"], ["staging is in eu-west-1"], ["prefer small pull requests"]]


def test_callers_queued_during_a_run_share_the_next_one_and_get_their_own_vectors(embedder):
    held = _Held(embedder, waiting=4)
    held.outer = coalescing = Coalescing(held)
    inputs = _inputs()
    out = _concurrently(coalescing, inputs)
    assert len(held.batches) == 2 and sorted(map(len, held.batches)) == [1, 5]  # the first alone, then all others at once
    for texts, vectors in zip(inputs, out):
        assert isinstance(vectors, np.ndarray) and vectors.shape == (len(texts), 384)
        assert np.allclose(vectors, embedder.embed(texts), atol=1e-5)
    assert (coalescing.runs, coalescing.texts) == (2, 6)


def test_a_run_takes_at_most_its_share_and_the_rest_wait_for_the_next(embedder):
    held = _Held(embedder, waiting=4)
    held.outer = coalescing = Coalescing(held, most=2)
    out = _concurrently(coalescing, _inputs())
    assert all(isinstance(v, np.ndarray) for v in out)
    assert max(len(b) for b in held.batches) == 2 and sum(map(len, held.batches)) == 6


def test_a_failed_run_fails_exactly_the_callers_whose_texts_it_held(embedder):
    held = _Held(embedder, waiting=4)
    held.outer = coalescing = Coalescing(held, most=3)
    held.fail_on = "we use uv, not pip"
    out = _concurrently(coalescing, _inputs())
    failed = [n for n, v in enumerate(out) if isinstance(v, Exception)]
    shared = next(b for b in held.batches if held.fail_on in b)
    assert failed and all(set(_inputs()[n]) <= set(shared) for n in failed)
    assert all(isinstance(out[n], np.ndarray) for n in range(len(out)) if n not in failed)
    with pytest.raises(RuntimeError):
        coalescing.embed(["we use uv, not pip"])  # alone, it fails the same way; nothing is stuck
    assert coalescing.embed(["still works"]).shape == (1, 384)
