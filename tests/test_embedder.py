"""The offline embedder and the OpenAI-compatible backend (served on loopback by the real model)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from headroom_mcp.errors import EmbedderError
from headroom_mcp.store.embedder import DEFAULT_MODEL_ID, OnnxEmbedder, OpenAIEmbedder, default_model_files


def test_bundled_model_is_the_pinned_file():
    import hashlib

    model, tokenizer = default_model_files()
    assert hashlib.sha256(model.read_bytes()).hexdigest() == "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
    assert tokenizer.name == "tokenizer.json"


def test_vectors_are_unit_length_and_batching_changes_nothing(embedder):
    texts = ["short", "a much longer sentence about deploying the billing service on Fridays " * 3, "uv, not pip"]
    batch = embedder.embed(texts)
    assert batch.shape == (3, 384) and batch.dtype == np.float32
    assert np.allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    singles = np.stack([embedder.embed([t])[0] for t in texts])
    assert np.allclose(batch, singles, atol=1e-4)  # padding and length-sorting are invisible
    assert embedder.model_id == DEFAULT_MODEL_ID


def test_meaning_not_spelling_drives_similarity(embedder):
    a, b, c = embedder.embed(["this repo uses uv, not pip", "the repository's package manager is uv", "the office coffee machine is broken"])
    assert float(a @ b) > float(a @ c) + 0.3


def test_long_input_is_truncated_not_rejected(embedder):
    assert embedder.embed(["word " * 5000]).shape == (1, 384)


def test_custom_model_dir_must_hold_both_files(tmp_path):
    with pytest.raises(EmbedderError, match="model.onnx"):
        OnnxEmbedder(tmp_path)


def test_custom_model_dir_loads(tmp_path, embedder):
    model, tokenizer = default_model_files()
    (tmp_path / "model.onnx").symlink_to(model)
    (tmp_path / "tokenizer.json").symlink_to(tokenizer)
    custom = OnnxEmbedder(tmp_path)
    assert custom.model_id == f"onnx:{tmp_path.name}"
    # A model dir is loaded as it is; the default is the same file repacked (minilm.py), whose
    # vectors agree with the file's own to within its activations' block quantisation.
    texts = ["same model", "this repo uses uv, not pip", "deploys to staging run every Friday at 3pm " * 4]
    cosines = (custom.embed(texts) * embedder.embed(texts)).sum(axis=1)
    assert cosines.min() > 0.999, cosines


@pytest.fixture
def embeddings_server(embedder):
    """An OpenAI-compatible /v1/embeddings endpoint on loopback, answering with the real model."""
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append((self.path, self.headers.get("Authorization"), body))
            vectors = embedder.embed(body["input"])
            data = [{"object": "embedding", "index": i, "embedding": v.tolist()} for i, v in enumerate(vectors)]
            payload = json.dumps({"object": "list", "data": data[::-1], "model": body["model"]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()


def test_openai_compatible_backend(embeddings_server, embedder):
    url, seen = embeddings_server
    remote = OpenAIEmbedder(url + "/v1", "nomic-embed-text", api_key="sk-local")
    vectors = remote.embed(["first text", "second text"])
    assert np.allclose(vectors, embedder.embed(["first text", "second text"]), atol=1e-5)  # order restored by index
    assert seen[0][0] == "/v1/embeddings" and seen[0][1] == "Bearer sk-local" and seen[0][2]["model"] == "nomic-embed-text"
    assert remote.model_id == "openai:nomic-embed-text"


def test_openai_backend_failure_is_a_clear_error():
    with pytest.raises(EmbedderError, match="failed"):
        OpenAIEmbedder("http://127.0.0.1:9", "m", timeout=2).embed(["x"])


def test_store_refuses_a_different_embedder(tmp_path, embedder, embeddings_server):
    from headroom_mcp.errors import HeadroomError
    from headroom_mcp.store.memory_store import MemoryStore

    MemoryStore.open(embedder, data_dir=tmp_path)
    with pytest.raises(HeadroomError, match="built with embedder"):
        MemoryStore.open(OpenAIEmbedder(embeddings_server[0], "other-model"), data_dir=tmp_path)


def test_the_arena_is_off_and_changes_no_vector(embedder):
    """The session runs without onnxruntime's CPU arena (which kept its peak for the session's
    life), and its vectors are bitwise those of a session with the arena."""
    import onnxruntime as ort

    assert embedder._session.get_session_options().enable_cpu_mem_arena is False
    texts = ["uv, not pip", "the billing service deploys on Fridays after the freeze " * 8, "port 5432"]
    before = embedder.embed(texts)
    options = embedder._session.get_session_options()
    options.enable_cpu_mem_arena = True
    arena = ort.InferenceSession(str(embedder.loaded_from), options, providers=["CPUExecutionProvider"])
    with_arena = OnnxEmbedder()
    with_arena.warm()
    with_arena._session = arena
    assert np.array_equal(with_arena.embed(texts), before)
    assert np.array_equal(np.stack([with_arena.embed([t])[0] for t in texts]), np.stack([embedder.embed([t])[0] for t in texts]))
