"""Recognise small talk ("hi", "thanks", "who are you?", the weather, a joke) before searching the documents.

Why prototypes and not the passage score: a greeting matches *some* passage of any corpus about as well as
a real but unanswerable question does (on the seed corpus "hi" scored 0.551 against on-topic 0.66-0.78),
while it sits right next to other greetings in the encoder's space, whatever the language. A question is
small talk when it is closer to one of a few written prototypes (``PROTOTYPES``, six languages) than
``THRESHOLD``; the prototypes are embedded once per embedder and process, never per request.
Measured in docs/quality.md: no XQuAD question of en, de, el or zh is flagged, and held-out small talk in
languages that are not among the prototypes is.
"""

from __future__ import annotations

import threading

import numpy as np

from qa.embedding import Embedder

# Kinds of small talk, each in English, Russian, German, French, Spanish and Chinese. Other languages are
# recognised through the multilingual encoders (held-out languages are measured, not listed here).
PROTOTYPES: tuple[str, ...] = (
    # greetings
    "hi", "hello", "hey there", "good morning", "good evening",
    "привет", "здравствуйте", "добрый день",
    "hallo", "guten Morgen", "servus",
    "bonjour", "salut", "bonsoir",
    "hola", "buenos días", "buenas tardes",
    "你好", "早上好", "嗨",
    # thanks and goodbyes
    "thanks", "thank you very much", "bye", "see you later",
    "спасибо", "большое спасибо", "пока", "до свидания",
    "danke", "vielen Dank", "tschüss", "auf Wiedersehen",
    "merci", "merci beaucoup", "au revoir",
    "gracias", "muchas gracias", "adiós",
    "谢谢", "非常感谢", "再见",
    # the assistant itself
    "who are you?", "what are you?", "what is your name?", "how are you?", "are you a bot?", "what can you do?",
    "hello, who are you?",
    "кто ты?", "как тебя зовут?", "как дела?", "что ты умеешь?",
    "wer bist du?", "wie heißt du?", "wie geht es dir?",
    "qui es-tu ?", "comment vas-tu ?", "comment tu t'appelles ?",
    "¿quién eres?", "¿cómo estás?", "¿cómo te llamas?",
    "你是谁？", "你叫什么名字？", "你好吗？",
    # the weather, the time
    "what is the weather tomorrow?", "will it rain today?", "what time is it?",
    "какая погода завтра?", "будет ли дождь сегодня?", "который час?",
    "wie wird das Wetter morgen?", "wie spät ist es?",
    "quel temps fera-t-il demain ?", "quelle heure est-il ?",
    "¿qué tiempo hará mañana?", "¿qué hora es?",
    "明天天气怎么样？", "现在几点了？",
    # jokes, chit-chat, keyboard noise
    "tell me a joke", "I'm bored", "I love you", "ok", "cool", "lol",
    "расскажи анекдот", "мне скучно",
    "erzähl mir einen Witz", "raconte-moi une blague", "cuéntame un chiste", "给我讲个笑话",
    "test", "aaaa", "asdf", "???",
)  # fmt: skip

# Cosine of a question with its closest prototype (qa.config's default embedder: e5 0.9 + USE 0.1) above
# which it is small talk; chosen between the highest XQuAD question and the lowest held-out small talk
# (docs/quality.md, bench/small_talk.py).
THRESHOLD = 0.90

_vectors: dict[str, np.ndarray] = {}
_lock = threading.Lock()


def prototype_vectors(embedder: Embedder) -> np.ndarray:
    """The prototypes as this embedder reads questions, embedded on first use and kept for the process."""
    with _lock:
        if embedder.name not in _vectors:
            _vectors[embedder.name] = embedder.encode_queries(list(PROTOTYPES))
        return _vectors[embedder.name]


def closeness(embedder: Embedder, query: np.ndarray) -> float:
    """Cosine of an encoded question (``encode_queries``, unit length) with its closest prototype."""
    return float(np.max(prototype_vectors(embedder) @ query))


def is_small_talk(embedder: Embedder, query: np.ndarray, threshold: float = THRESHOLD) -> bool:
    return closeness(embedder, query) >= threshold
