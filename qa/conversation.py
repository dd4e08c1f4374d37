"""Whether a chat question needs the turn before it, and the text it is then read as.

Reading every question after the previous user turn pulled each one toward the last: after "who commands US
troops in Japan?", "what is the capital of France?" was answered with the Hawaii sentence, and on-topic
questions were answered from the previous question's passage (issue 23). So a question is read after its
predecessor only when it cannot stand alone: it opens by continuing the previous one ("and in Germany?",
"what about 2019?", "und wann?") or it points back to it with a pronoun or "there"/"then" ("where is it
based?", "wo ist er geboren?", "где она находится?") without naming a subject of its own. A question that
holds no pointer ("how tall is Mount Everest?", "who did Kihara meet?"), or whose pointer stands for a subject
it names itself ("where did Tesla live for much of his life?"), is complete and is read alone, exactly as if it
were the chat's first (``qa eval --conversation`` measures both).

The cues are words of the languages the bundled models read best, whole words except in Chinese and Japanese.
English "that"/"this" count only as a determiner near the start or as the last word ("where is that command
based?", "when was that?"), not as the relative pronoun of "the river that flows ..."; "there" not in "is there".
German capitalises every noun, so a German question with a noun before its pointer ("wie viele Nationen
kontrollieren diese Region?") counts as naming its subject and is read alone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from qa.models import Turn

FOLLOW_UP_CHARS = 400  # of the previous user turn read before a follow-up question

# A question opening like these continues the previous one, whatever it names ("and in Germany?")
_CONTINUES = re.compile(
    r"^\W*(?:and|what about|how about|and what about|und|was ist mit|und was ist mit|et|et pour|"
    r"y|¿y|e|а|и|а что|а как|και|κι|ε|"
    r"那么|那|还有|那麼|還有|それで|では)(?:\W|$)",
    re.IGNORECASE,
)
# Pronouns and adverbs that point back to something named earlier (third person, "there", "then")
_POINTERS = re.compile(
    r"\b(?:it|its|he|him|his|she|her|hers|they|them|their|theirs|then|"
    r"er|ihn|ihm|sein|seine|seinen|seinem|seiner|sie|ihr|ihre|ihren|ihrem|ihrer|dort|dorthin|damals|"
    r"il|elle|ils|elles|lui|leur|leurs|là|él|ella|ellos|ellas|allí|allá|ahí|entonces|lei|loro|lì|ele|ela|"
    r"eles|elas|lá|ali|"
    r"он|она|оно|они|его|её|ее|их|ему|ей|им|него|неё|нее|них|нему|ней|ним|нём|нем|там|туда|тогда|"
    r"αυτός|αυτή|αυτό|αυτοί|αυτές|αυτά|αυτού|αυτής|αυτών|αυτόν|αυτήν|εκεί|τότε)\b"
    r"|dies|diese|dieser|dieses|diesen|diesem"
    r"|他|她|它|其|那里|那裡|那儿|那兒|当时|當時|该|該|这个|這個|这些|這些|那个|那個|那些|彼|彼女|それ|そこ",
    re.IGNORECASE,
)
_DEMONSTRATIVE = re.compile(r"\b(?:that|this|these|those)\b", re.IGNORECASE)
_THERE = re.compile(  # not the "there" of "is there", "are there ... ?"
    r"(?<!\bis\s)(?<!\bare\s)(?<!\bwas\s)(?<!\bwere\s)\bthere\b(?!\s+(?:is|are|was|were|be|been|'s)\b)",
    re.IGNORECASE,
)
# A name: a word capitalised inside the sentence (Latin, Cyrillic, Greek). Numbers are no subject: "what was its
# population in 2010?" still asks about the previous turn's city.
_NAMED = re.compile(r"(?<!^)(?<![.!?¿¡]\s)\b[A-ZÀ-ÖØ-ÞА-ЯЁΑ-ΩΆ-Ώ][\w'-]*")
_WORD = re.compile(r"\w+")
STEM = 4  # leading letters compared, so "Кихара" and "Кихаре", "Japan" and "Japanese" are one name


def needs_previous(question: str, previous: str) -> bool:
    """Whether ``question`` leans on ``previous`` (the chat's last user turn): see the module docstring.

    A pointer leans on the previous turn unless the question names a subject of its own before it, which the
    pointer then usually stands for ("how old was Peyton Manning when he played?"); a name after it is what
    is asked about ("how far is it from Miami?", "where did he meet Shin Won-sik?")."""
    text = question.strip()
    if _CONTINUES.search(text):
        return True
    pointer = _first_pointer(text)
    if pointer is None:
        return False
    known = {word.lower()[:STEM] for word in _WORD.findall(previous)}
    return not any(m.start() < pointer and m.group().lower()[:STEM] not in known for m in _NAMED.finditer(text))


def _first_pointer(text: str) -> int | None:
    """Where the first word pointing back starts, or None."""
    starts = [m.start() for m in (_POINTERS.search(text), _THERE.search(text)) if m]
    words = list(_WORD.finditer(text))
    for match in _DEMONSTRATIVE.finditer(text):
        position = sum(w.start() < match.start() for w in words)
        if 1 <= position <= 3 or position == len(words) - 1:  # "where is that command ...", "... was that?"
            starts.append(match.start())
            break
    return min(starts, default=None)


def follow_up_text(question: str, history: Sequence[Turn], max_chars: int = FOLLOW_UP_CHARS) -> str | None:
    """The question read after the chat's previous user turn, or None when it is read alone.

    Only the latest user turn counts (older ones are usually about something else by then), and not the
    assistant's reply: that reply is a passage of the corpus, and reading it in would pull every next
    question back to the passage already shown.
    """
    previous = next((t.content.strip() for t in reversed(history) if t.role == "user" and t.content.strip()), None)
    if previous is None or not needs_previous(question, previous):
        return None
    return f"{previous[-max_chars:]} {question}"
