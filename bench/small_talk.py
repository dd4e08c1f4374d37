"""How well qa.small_talk separates small talk from questions about documents.

False positives: every XQuAD question (en, de, el, zh: 4 x 1190) that the prototypes would flag. Recall: small
talk in languages that are NOT among the prototypes (``HELD_OUT`` below: Italian, Portuguese, Japanese,
Polish, Turkish, Dutch, Korean, Ukrainian, Greek), plus questions about a document that look chatty
(``ON_TOPIC``: must stay unflagged), and small talk in prototype languages worded unlike any prototype
(``REWORDED``: Russian, Hindi, Thai, English; written after the prototypes, to measure them, never copied into
them). Question vectors are cached in --cache, so a rerun takes seconds:

    python bench/small_talk.py --xquad ../shared/data/xquad --cache /tmp/qa-small-talk
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import _common  # noqa: F401  (puts this checkout first on sys.path)
import numpy as np

from qa import small_talk
from qa.config import Settings
from qa.embedding import make_embedder

HELD_OUT = (
    # Polish, Turkish, Dutch, Korean, Ukrainian, Greek, Swedish, Czech, Vietnamese, Indonesian
    "cześć", "dzień dobry", "dziękuję", "kim jesteś?", "jaka będzie jutro pogoda?", "opowiedz dowcip",
    "merhaba", "teşekkürler", "sen kimsin?", "yarın hava nasıl olacak?", "bana bir fıkra anlat",
    "hoi", "goedemorgen", "dank je wel", "wie ben jij?", "wat voor weer wordt het morgen?",
    "안녕하세요", "감사합니다", "너는 누구니?", "내일 날씨 어때?",
    "привіт", "дякую", "хто ти?", "яка погода завтра?",
    "γεια σου", "ευχαριστώ", "ποιος είσαι;", "τι καιρό θα κάνει αύριο;",
    "hej", "tack så mycket", "vem är du?", "hur blir vädret i morgon?",
    "ahoj", "děkuji", "kdo jsi?", "jaké bude zítra počasí?",
    "xin chào", "cảm ơn", "bạn là ai?", "ngày mai thời tiết thế nào?",
    "halo", "terima kasih", "siapa kamu?", "bagaimana cuaca besok?",
)  # fmt: skip

REWORDED = (
    "здорово", "доброе утро", "добрый вечер", "приветик", "спасибо тебе", "благодарю", "ты кто такой?",
    "ты бот?", "что ты можешь?", "сколько сейчас времени?", "какая сегодня погода?", "пошути", "мне грустно",
    "ок",
    "हैलो", "सुप्रभात", "बहुत बहुत धन्यवाद", "तुम कौन हो?", "तुम्हारा नाम क्या है?", "आज मौसम कैसा है?",
    "अभी क्या समय हुआ है?", "कोई मज़ाक सुनाओ", "क्या तुम रोबोट हो?",
    "ฝนจะตกไหมวันนี้", "วันนี้อากาศเป็นยังไง", "เธอชื่ออะไร", "คุณทำอะไรได้บ้าง", "ขอบคุณมาก", "หวัดดี",
    "ตอนนี้กี่โมง", "อรุณสวัสดิ์", "คุณเป็นบอทหรือเปล่า",
    "hey, what's up?", "good night", "thx", "what's the weather like today?",
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
    "who is the defence minister?",
    "what time did the meeting start?",
    "Who are the ministers who met in Tokyo?",
    "what was the weather like during the talks?",
    "जापान में अमेरिकी सैनिकों की कमान कौन संभालता है?",
    "من يقود القوات الأمريكية في اليابان؟",
    "ใครเป็นผู้บัญชาการทหารสหรัฐในญี่ปุ่น",
    "बैठक में मौसम कैसा था?",
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
    tag = hashlib.sha1(embedder.name.encode()).hexdigest()[:12]
    cached = args.cache / f"questions-{tag}.npy" if args.cache else None
    if cached is not None and cached.exists():
        vectors = np.load(cached)
    else:
        vectors = embedder.encode_queries(texts)
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            np.save(cached, vectors)
    chat, asked = small_talk.prototype_vectors(embedder)

    def closeness(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        near = (v @ chat.T).max(axis=1)
        return near, near - (v @ asked.T).max(axis=1)

    xquad, xquad_c = closeness(vectors)
    held, held_c = closeness(embedder.encode_queries(list(HELD_OUT)))
    topic, topic_c = closeness(embedder.encode_queries(list(ON_TOPIC)))
    t, m = small_talk.THRESHOLD, small_talk.MARGIN
    print(f"embedder {embedder.name}; threshold {t}, margin over document questions {m}")
    flagged = (xquad >= t) & (xquad_c >= m)
    print(f"XQuAD questions: {len(texts)}; flagged {int(flagged.sum())}")
    print(
        f"  closeness max {xquad.max():.3f}; contrast max {xquad_c.max():.3f}, 99.9% {np.quantile(xquad_c, 0.999):.3f}"
    )
    for i in np.argsort(-xquad_c)[:5]:
        print(f"   closeness {xquad[i]:.3f} contrast {xquad_c[i]:+.3f}  {texts[i]}")
    caught = (held >= t) & (held_c >= m)
    print(f"held-out small talk ({len(HELD_OUT)}, languages without prototypes): recall {np.mean(caught):.3f}")
    for text, near, contrast in sorted(zip(HELD_OUT, held, held_c), key=lambda item: item[2]):
        print(f"   closeness {near:.3f} contrast {contrast:+.3f}  {text}")
    reworded, reworded_c = closeness(embedder.encode_queries(list(REWORDED)))
    caught = (reworded >= t) & (reworded_c >= m)
    print(f"reworded small talk ({len(REWORDED)}, prototype languages): recall {np.mean(caught):.3f}")
    for text, near, contrast, hit in sorted(zip(REWORDED, reworded, reworded_c, caught), key=lambda item: item[2]):
        if not hit:
            print(f"   missed: closeness {near:.3f} contrast {contrast:+.3f}  {text}")
    print("chatty on-topic questions (must not be flagged):")
    for text, near, contrast in zip(ON_TOPIC, topic, topic_c):
        mark = "FLAGGED " if near >= t and contrast >= m else ""
        print(f"   closeness {near:.3f} contrast {contrast:+.3f}  {mark}{text}")
    for cut in (0.78, 0.80, 0.84):
        for margin in (0.0, 0.04, 0.06, 0.085, 0.10):
            fp = int(np.sum((xquad >= cut) & (xquad_c >= margin)))
            rec = np.mean((held >= cut) & (held_c >= margin))
            print(f"threshold {cut:.2f} margin {margin:+.3f}: XQuAD flagged {fp}, held-out recall {rec:.3f}")
    plain = [(cut, int(np.sum(xquad >= cut)), np.mean(held >= cut)) for cut in (0.84, 0.85, 0.86, 0.88, 0.90)]
    for cut, fp, rec in plain:
        print(f"closeness alone {cut:.2f}: XQuAD flagged {fp}, held-out recall {rec:.3f}")


if __name__ == "__main__":
    main()
