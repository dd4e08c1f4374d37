"""What a generation's bytes are made of, per chunk.

    python bench/index_size.py INDEX_DIR
    python bench/index_size.py --plan ../shared/data/xquad/xquad.el.json [--dim 896] [--fine 384] [--terms 256]

The first form lists every file of the live generation of an index folder (the embedding cache beside it
is not part of it) with its bytes per chunk, against issue 11's target of 4 KiB per chunk. The second
writes a generation of a SQuAD file's paragraphs with the real chunking and store code but placeholder
vectors (no model runs: file sizes do not depend on the values, except the latent terms' count per
chunk, ``--terms``: e5's sparse head keeps 256 on XQuAD passages, measured on its embedding cache).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np


def report(index_dir: Path) -> None:
    gen = index_dir / (index_dir / "CURRENT").read_text().strip()
    manifest = json.loads((gen / "manifest.json").read_text())
    chunks = sum(doc["chunks"] for doc in manifest["documents"].values())
    files = sorted((p for p in gen.iterdir() if p.is_file()), key=lambda p: -p.stat().st_size)
    total = sum(p.stat().st_size for p in files)
    print(f"{gen.name}: format {manifest.get('format')}, {len(manifest['documents'])} documents, {chunks} chunks")
    for path in files:
        print(f"{path.name:>22} {path.stat().st_size:>11,} B {path.stat().st_size / chunks:>9.1f} B/chunk")
    print(f"{'total':>22} {total:>11,} B {total / chunks:>9.1f} B/chunk = {total / chunks / 1024:.2f} KiB/chunk")


def plan(contexts: Path, index_dir: Path, dim: int, fine: int, terms: int) -> None:
    from qa.builder import Builder
    from qa.config import Settings
    from qa.embedding import SPARSE_K
    from qa.indexer import chunking_params, manifest_header
    from qa.models import Document
    from qa.stores import local
    from qa.stores.base import DocRows
    from qa.stores.faiss import assemble

    class Placeholder:  # Builder.plan never calls the model; the header reads its name, widths and sparse head
        name = "placeholder"

        def encode_sparse(self, texts: list[str]) -> np.ndarray:
            raise NotImplementedError

    model = Placeholder()
    model.dim, model.fine_dim = dim, fine  # type: ignore[attr-defined]
    params = chunking_params(Settings())

    data = json.loads(contexts.read_text(encoding="utf-8"))
    texts = list(dict.fromkeys(p["context"] for article in data["data"] for p in article["paragraphs"]))
    rng = np.random.default_rng(0)

    def unit(n: int) -> np.ndarray:
        rows = rng.normal(size=(n, dim)).astype(np.float32)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    documents = []
    with tempfile.TemporaryDirectory() as cache, Builder(model, params, 16, Path(cache)) as b:
        for row, text in enumerate(texts):
            p = b.plan(Document(f"p{row:04d}.txt", f"p{row:04d}", text, "0" * 64))
            alone = unit(len(p.sentences))
            contexts_ = np.array([a if c == s else unit(1)[0] for a, c, s in zip(alone, p.contexts, p.sentence_texts)])
            sparse = np.zeros((len(p.chunks), 2 * SPARSE_K), np.float32)
            sparse[:, :terms] = rng.integers(0, 16384, (len(p.chunks), terms))
            sparse[:, SPARSE_K : SPARSE_K + terms] = rng.uniform(0.01, 0.2, (len(p.chunks), terms))
            documents.append(DocRows(p.doc, p.chunks, p.sentences, unit(len(p.chunks)), alone,
                                     contexts_.reshape(-1, dim), sparse))  # fmt: skip
    local.save(index_dir, *assemble(manifest_header(model, params), documents))  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("index_dir", type=Path, nargs="?")
    parser.add_argument("--plan", type=Path, help="a SQuAD-format file: write its generation with placeholder rows")
    parser.add_argument("--dim", type=int, default=896, help="vector width (default: the default embedder's)")
    parser.add_argument(
        "--fine", type=int, default=384, help="sentence-row columns kept at 8 bits (default: e5's, of e5+use)"
    )
    parser.add_argument("--terms", type=int, default=256, help="latent terms per chunk")
    args = parser.parse_args()
    if args.plan:
        with tempfile.TemporaryDirectory() as tmp:
            plan(args.plan, Path(tmp), args.dim, args.fine, args.terms)
            report(Path(tmp))
    else:
        report(args.index_dir)


if __name__ == "__main__":
    main()
