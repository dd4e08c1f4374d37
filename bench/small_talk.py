"""How well qa.small_talk separates small talk from questions about documents.

False positives: every XQuAD question (en, de, el, zh: 4 x 1190) that the prototypes would flag. Recall: small
talk in languages that are NOT among the prototypes (``HELD_OUT`` below: Italian, Portuguese, Japanese,
Polish, Turkish, Dutch, Korean, Ukrainian, Greek), plus questions about a document that look chatty
(``ON_TOPIC``: must stay unflagged). Question vectors are cached in --cache, so a rerun takes seconds:

    python bench/small_talk.py --xquad ../shared/data/xquad --cache /tmp/qa-small-talk
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import _common  # noqa: F401  (puts this checkout first on sys.path)
import numpy as np

from qa import small_talk
from qa.config import Settings
from qa.embedding import make_embedder

HELD_OUT = (
    # Italian, Portuguese, Japanese, Polish, Turkish, Dutch, Korean, Ukrainian, Greek
    "ciao", "buongiorno", "grazie mille", "chi sei?", "che tempo farà domani?", "raccontami una barzelletta",
    "olá", "bom dia", "obrigado", "quem é você?", "como está o tempo amanhã?", "conta-me uma piada",
    "こんにちは", "ありがとう", "あなたは誰ですか？", "明日の天気は？", "冗談を言って",
    "cześć", "dzień dobry", "dziękuję", "kim jesteś?", "jaka będzie jutro pogoda?", "opowiedz dowcip",
    "merhaba", "teşekkürler", "sen kimsin?", "yarın hava nasıl olacak?",
    "hoi", "goedemorgen", "dank je wel", "wie ben jij?", "wat voor weer wordt het morgen?",
    "안녕하세요", "감사합니다", "너는 누구니?", "내일 날씨 어때?",
    "привіт", "дякую", "хто ти?", "яка погода завтра?",
    "γεια σου", "ευχαριστώ", "ποιος είσαι;", "τι καιρό θα κάνει αύριο;",
)  # fmt: skip

ON_TOPIC = (
    "who commands US troops in Japan?",
    "Кто руководит американскими военными в Японии?",
    "How many US troops are stationed in Japan?",
    "What did Japan do with its arms export restrictions?",
    "Кто такой Ллойд Остин?",
    "What is the capital of France?",
    "Who won the football World Cup final in 2018?",
    "where is it based?",
    "what time did the meeting start?",
    "who is the defence minister?",
)


def questions(xquad: Path) -> list[str]:
    out = []
    for lang in ("en", "de", "el", "zh"):
        data = json.loads((xquad / f"xquad.{lang}.json").read_text(encoding="utf-8"))["data"]
        out += [qa["question"] for a in data for p in a["paragraphs"] for qa in p["qas"]]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--xquad", type=Path, default=Path("../shared/data/xquad"))
    parser.add_argument("--cache", type=Path, default=None, help="folder for the question vectors")
    parser.add_argument("--embedder", default=Settings().embedder)
    args = parser.parse_args()

    embedder = make_embedder(args.embedder)
    texts = questions(args.xquad)
    cached = args.cache / f"questions-{abs(hash(embedder.name)) % 10**8}.npy" if args.cache else None
    if cached is not None and cached.exists():
        vectors = np.load(cached)
    else:
        vectors = embedder.encode_queries(texts)
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            np.save(cached, vectors)
    protos = small_talk.prototype_vectors(embedder)
    xquad = (vectors @ protos.T).max(axis=1)
    held = (embedder.encode_queries(list(HELD_OUT)) @ protos.T).max(axis=1)
    topic = (embedder.encode_queries(list(ON_TOPIC)) @ protos.T).max(axis=1)
    t = small_talk.THRESHOLD
    print(f"embedder {embedder.name}; threshold {t}")
    print(f"XQuAD questions: {len(texts)}; closeness max {xquad.max():.3f}, 99.9% {np.quantile(xquad, 0.999):.3f}")
    for i in np.argsort(-xquad)[:5]:
        print(f"   {xquad[i]:.3f}  {texts[i]}")
    print(f"flagged at {t}: {int(np.sum(xquad >= t))} of {len(texts)}")
    print(f"held-out small talk: {len(HELD_OUT)}; flagged at {t}: {np.mean(held >= t):.3f}; min {held.min():.3f}")
    for text, score in sorted(zip(HELD_OUT, held), key=lambda item: item[1])[:8]:
        print(f"   {score:.3f}  {text}")
    print("chatty on-topic questions (must not be flagged):")
    for text, score in zip(ON_TOPIC, topic):
        print(f"   {score:.3f}  {'FLAGGED ' if score >= t else ''}{text}")
    for cut in (0.86, 0.87, 0.88, 0.89, 0.90, 0.91, 0.92):
        flagged = int(np.sum(xquad >= cut))
        print(f"threshold {cut:.2f}: XQuAD flagged {flagged}, held-out recall {np.mean(held >= cut):.3f}")


if __name__ == "__main__":
    main()
