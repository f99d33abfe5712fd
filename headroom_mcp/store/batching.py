"""Micro-batching: texts that concurrent requests embed at the same moment go in one model run.

One ONNX run over eight short texts costs little more than over one (the cores are busy
either way), so when twenty agents recall at once, each waiting its turn for a run of its
own is what limits throughput. ``Coalescing`` adds no wait for a caller alone: whoever finds
the model idle runs at once with everything queued by then, and callers arriving during a
run are taken together by the next one.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .embedder import BATCH_SIZE, Embedder


@dataclass
class _Job:
    texts: Sequence[str]
    vectors: np.ndarray | None = None
    error: BaseException | None = None
    done: bool = False


class Coalescing:
    """An ``Embedder`` that runs concurrent callers' texts through ``inner`` in shared batches."""

    def __init__(self, inner: Embedder, most: int = BATCH_SIZE):
        """``most``: texts one shared run takes (callers beyond it wait for the next run)."""
        self.inner = inner
        self.model_id, self.calibration = inner.model_id, inner.calibration
        self.most = most
        self._turn = threading.Condition()
        self._queue: list[_Job] = []
        self._running = False
        #: Model runs made, and the texts they took (how much coalescing happened).
        self.runs = self.texts = 0

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        job = _Job(list(texts))
        with self._turn:
            self._queue.append(job)
        while True:
            with self._turn:
                while self._running and not job.done:
                    self._turn.wait()
                if job.done:
                    break
                # The model is idle: run it for the callers queued first, maybe this one.
                batch: list[_Job] = []
                taken = 0
                while self._queue and (not batch or taken + len(self._queue[0].texts) <= self.most):
                    batch.append(self._queue.pop(0))
                    taken += len(batch[-1].texts)
                self._running = True
            self._run(batch)
        if job.error is not None:
            raise job.error
        assert job.vectors is not None
        return job.vectors

    def _run(self, batch: list[_Job]) -> None:
        try:
            vectors = self.inner.embed([text for job in batch for text in job.texts])
            start = 0
            for job in batch:
                job.vectors, start = vectors[start:start + len(job.texts)], start + len(job.texts)
        except BaseException as exc:  # each caller gets the failure of the run that held its texts
            for job in batch:
                job.error = exc
        finally:
            with self._turn:
                for job in batch:
                    job.done = True
                self.runs += 1
                self.texts += sum(len(job.texts) for job in batch)
                self._running = False
                self._turn.notify_all()
