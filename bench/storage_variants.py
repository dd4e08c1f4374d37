"""`qa eval` with another storage of the index: the chunk codes and the number of latent terms kept.

    python bench/storage_variants.py --codes int8 --terms 128 -- --questions ../shared/data/xquad/xquad.en.json \
        --contexts ../shared/data/xquad/xquad.zh.json --json --workdir /tmp/v-zh

Everything after ``--`` goes to `qa eval`. A workdir holding only a copy of another workdir's embedding cache
(``index/cache``) builds the variant's index without embedding anything again. docs/quality.md ("End to end,
2026-12-02 evening") lists what each variant scored.
"""

from __future__ import annotations

import argparse
import sys

import _common  # noqa: F401  (puts this checkout first on sys.path)

from qa import vector_index
from qa.cli import app
from qa.stores import rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--codes", choices=("int8", "fp16"), default=vector_index.FLAT_CODES)
    parser.add_argument("--terms", type=int, default=rows.STORED_TERMS, help="latent terms stored per chunk")
    parser.add_argument("eval_args", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    vector_index.FLAT_CODES, rows.STORED_TERMS = args.codes, args.terms
    print(f"# storage variant: chunk codes {args.codes}, {args.terms} latent terms", file=sys.stderr)
    sys.argv = ["qa", "eval", *[a for a in args.eval_args if a != "--"]]
    app()


if __name__ == "__main__":
    main()
