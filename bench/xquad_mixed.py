"""Write xquad.mixed.json, the mixed-language development corpus, from XQuAD's German, Greek, English and Chinese files.

XQuAD (github.com/google-deepmind/xquad, CC BY-SA 4.0) is parallel: the same 240 paragraphs and 1190 questions in
each language, with matching question ids. The mixed file keeps English's articles and order and takes each
paragraph, counted through the whole file, round robin from de, el, en, zh (60 each), with that language's
questions and answers, so English questions against it measure retrieval in a corpus of several languages at once.
The output is byte for byte the file the figures in docs/quality.md were measured on (``--check`` compares).

    git clone https://github.com/google-deepmind/xquad data/xquad
    python bench/xquad_mixed.py data/xquad            # writes data/xquad/xquad.mixed.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

LANGS = ("de", "el", "en", "zh")  # the round robin's order
VERSION = "xquad-mixed-dev: each paragraph in one of de, el, en, zh (round robin)"


def mixed(folder: Path) -> str:
    """The mixed file's text, from ``xquad.{de,el,en,zh}.json`` in ``folder``."""
    files = {lang: json.loads((folder / f"xquad.{lang}.json").read_text(encoding="utf-8")) for lang in LANGS}
    data, row = [], 0
    for a, article in enumerate(files["en"]["data"]):
        paragraphs = []
        for p in range(len(article["paragraphs"])):
            paragraphs.append(files[LANGS[row % len(LANGS)]]["data"][a]["paragraphs"][p])
            row += 1
        data.append({"title": article["title"], "paragraphs": paragraphs})
    return json.dumps({"version": VERSION, "data": data}, ensure_ascii=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="the folder holding xquad.de.json, xquad.el.json, ...")
    parser.add_argument("--check", action="store_true", help="compare with the folder's xquad.mixed.json instead")
    args = parser.parse_args()
    text, target = mixed(args.folder), args.folder / "xquad.mixed.json"
    if args.check:
        same = target.read_text(encoding="utf-8") == text
        print(f"{target}: {'identical' if same else 'DIFFERS'}")
        sys.exit(0 if same else 1)
    target.write_text(text, encoding="utf-8")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
