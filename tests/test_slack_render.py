"""Block Kit rendering: what Slack shows for an answer, within Slack's limits, with mrkdwn escaped."""

from __future__ import annotations

import re

from qa.models import Answer, Citation, Span
from qa.slack_render import (
    ELLIPSIS,
    MAX_BLOCKS,
    NO_ANSWER,
    POSSIBLY,
    SECTION_LIMIT,
    Corpus,
    clip,
    render_blocks,
    render_text,
    slack_len,
)

BROKEN_ENTITY = re.compile(r"&(?!amp;|lt;|gt;)")


def _citation(rank: int, text: str, title: str = "Talks", document: str = "news/talks.txt") -> Citation:
    return Citation(
        rank=rank,
        document=document,
        title=title,
        start=100,
        end=100 + len(text),
        text=text,
        highlight=Span(110, 110 + len(text), text),
        score=0.9 - rank / 100,
    )


def _texts(blocks: list[dict]) -> list[str]:
    out = []
    for block in blocks:
        if "text" in block:
            out.append(block["text"]["text"])
        out.extend(element["text"] for element in block.get("elements", []))
    return out


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def test_answer_then_citations_with_links() -> None:
    sentence = "Управление осуществляет глава Индо-Тихоокеанского командования на Гавайях."
    answer = Answer("who?", sentence, [_citation(1, sentence, document="dir/a b|c.txt"), _citation(2, "Other.")])
    blocks = render_blocks(answer, "https://qa.example.test/")
    assert blocks[0] == {"type": "section", "text": {"type": "mrkdwn", "text": sentence}}
    first = blocks[2]["text"]["text"]
    assert first.startswith("*<https://qa.example.test/#doc=dir/a%20b%7Cc.txt&amp;start=110&amp;end=")
    assert first.endswith(f"|Talks>*\n>{sentence}")
    assert "dir/a b|c.txt · characters 110–" in blocks[3]["elements"][0]["text"]
    assert len([b for b in blocks if b["type"] == "section"]) == 3
    no_link = render_blocks(answer, None)
    assert no_link[2]["text"]["text"] == f"*Talks*\n>{sentence}"
    assert render_text(answer).splitlines() == [sentence, f"1. Talks: {sentence}", "2. Talks: Other."]


def test_a_low_confidence_answer_says_possibly_in_its_first_line() -> None:
    sentence = "Это первые двусторонние переговоры министров обороны Японии и Кореи за последние 15 лет."
    cited = [_citation(1, sentence), _citation(2, "Other.")]
    low = Answer("When did the ministers meet?", sentence, cited, confidence="low")
    assert render_blocks(low)[0]["text"]["text"] == f"{POSSIBLY}{sentence}"
    assert render_text(low).splitlines()[0] == f"{POSSIBLY}{sentence}"
    assert render_text(low).splitlines()[1] == f"1. Talks: {sentence}"  # the citation itself is unchanged
    high = Answer("When did the ministers meet?", sentence, cited, confidence="high")
    assert render_blocks(high)[0]["text"]["text"] == sentence and render_text(high).splitlines()[0] == sentence


def test_mrkdwn_control_characters_are_escaped() -> None:
    text = "Use <@U123> & <!channel> or <https://evil.example|click> > here"
    blocks = render_blocks(Answer("q", text, [_citation(1, text, title="<b>R&D</b>")]))
    for rendered in _texts(blocks):
        assert "<@U123>" not in rendered and "<!channel>" not in rendered and "<https://evil" not in rendered
    assert (
        blocks[0]["text"]["text"]
        == "Use &lt;@U123&gt; &amp; &lt;!channel&gt; or &lt;https://evil.example|click&gt; &gt; here"
    )
    assert blocks[2]["text"]["text"].startswith("*&lt;b&gt;R&amp;D&lt;/b&gt;*\n>Use &lt;@U123&gt;")


def test_long_passages_are_cut_with_an_ellipsis_within_limits() -> None:
    passage = "Глава & <командования> " * 800  # ~18,000 characters, full of characters that escape
    many = [_citation(rank, passage, title="T&" * 400, document="a&b/" * rank * 20) for rank in range(1, 120)]
    answer = Answer("q", passage, many)
    blocks = render_blocks(answer, "https://qa.example.test", max_citations=200, echo_question=True)
    assert len(blocks) <= MAX_BLOCKS
    for rendered in _texts(blocks):
        assert slack_len(rendered) <= SECTION_LIMIT
        assert not BROKEN_ENTITY.search(rendered)
    head = blocks[1]["text"]["text"]
    assert head.endswith(ELLIPSIS) and slack_len(head) > SECTION_LIMIT - 60
    assert passage.startswith(_unescape(head[: -len(ELLIPSIS)]))
    fallback = render_text(answer, max_citations=200)
    assert slack_len(fallback) <= 3000 and not BROKEN_ENTITY.search(fallback)


def test_cuts_never_split_a_character() -> None:
    accented = "e\u0301" * 3000  # é as e + combining acute
    cut = clip(accented, 101)
    assert cut.endswith(ELLIPSIS) and cut[: -len(ELLIPSIS)].endswith("e\u0301")
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467 " * 500  # ZWJ sequences and astral code points
    for limit in range(20, 60):
        kept = clip(family, limit)[: -len(ELLIPSIS)]
        assert slack_len(kept) + 1 <= limit
        assert family.startswith(kept) and kept.rstrip().endswith("\U0001f467")
    for limit in range(5, 30):
        kept = clip("&&&&&&&&&&&&&&&&&&&&", limit)
        assert not BROKEN_ENTITY.search(kept) and slack_len(kept) <= limit


def test_no_answer_says_so_and_lists_the_closest_passages() -> None:
    answer = Answer("what is the capital of Mars?", "", [_citation(1, "Nearest."), _citation(2, "Next.")], True)
    blocks = render_blocks(answer, None)
    assert blocks[0]["text"]["text"] == NO_ANSWER + " The closest passages:"
    assert [b["text"]["text"] for b in blocks if b["type"] == "section"][1:] == [
        "*Talks*\n>Nearest.",
        "*Talks*\n>Next.",
    ]
    assert render_blocks(Answer("q", "", [], True))[0]["text"]["text"] == NO_ANSWER


def test_citation_names_its_page() -> None:
    sentence = "The lease ends in March."
    paged = Citation(1, "lease.pdf", "Lease", 0, len(sentence), sentence, Span(0, len(sentence), sentence), 0.8, page=2)
    blocks = render_blocks(Answer("when?", sentence, [paged, _citation(2, "Other.")]), "https://qa.example.test")
    assert blocks[2]["text"]["text"].split("\n")[0].endswith("|Lease>* · p. 2")
    assert "p. " not in blocks[4]["text"]["text"]  # no page for a format without pages
    assert render_text(Answer("when?", sentence, [paged])).splitlines()[1] == f"1. Lease · p. 2: {sentence}"


def test_small_talk_names_the_documents_and_lists_no_sources() -> None:
    corpus = Corpus(12, ("Us japan security talks", "Harbour report", "Lease", "Minutes"))
    closest = [_citation(1, "Unrelated passage.")]
    hello = Answer("hi there!", "", closest, no_answer=True, no_answer_reason="small_talk")
    blocks = render_blocks(hello, "https://qa.example.test", corpus=corpus)
    assert blocks == [
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": "Ask me about the 12 documents: Us japan security talks, Harbour report, Lease…",
            },
        }
    ]
    assert render_text(hello, corpus=corpus) == blocks[0]["text"]["text"]
    privet = Answer("Привет, как дела?", "", [], no_answer=True, no_answer_reason="small_talk")
    assert _texts(render_blocks(privet, corpus=Corpus(1, ("Lease",)))) == ["Спросите меня о документах (1): Lease"]
    greek = Answer("Γεια σου", "", [], no_answer=True, no_answer_reason="small_talk")
    assert _texts(render_blocks(greek, corpus=corpus))[0].startswith("Ρωτήστε με για τα έγγραφα (12): ")
    thai = Answer("สวัสดีครับ", "", [], no_answer=True, no_answer_reason="small_talk")
    assert _texts(render_blocks(thai, corpus=corpus))[0].startswith("ถามฉันเกี่ยวกับเอกสาร (12): ")
    # Devanagari and Arabic script write several languages: a question long enough to identify is answered in
    # its language, a bare greeting in English
    for question, reply in [("नमस्ते, आप कौन हैं और क्या करते हैं?", "मुझसे दस्तावेज़ों (12) के बारे में पूछिए: "),
                            ("مرحبا، من أنت وماذا تفعل؟", "اسألني عن المستندات (12): "),
                            ("नमस्ते", "Ask me about the 12 documents: ")]:  # fmt: skip
        chat = Answer(question, "", [], no_answer=True, no_answer_reason="small_talk")
        assert _texts(render_blocks(chat, corpus=corpus))[0].startswith(reply), question
    assert _texts(render_blocks(hello, corpus=Corpus(1, ("<b>Lease</b>",)))) == [
        "Ask me about the document: &lt;b&gt;Lease&lt;/b&gt;"
    ]


def test_not_found_says_so_and_still_lists_the_closest_passages() -> None:
    closest = [_citation(1, "Unrelated passage."), _citation(2, "Another one.")]
    missing = Answer("what is the capital of France?", "", closest, no_answer=True, no_answer_reason="not_found")
    texts = _texts(render_blocks(missing))
    assert texts[0] == NO_ANSWER + " The closest passages:"
    assert [text for text in texts if text.startswith("*Talks*")] == [
        "*Talks*\n>Unrelated passage.",
        "*Talks*\n>Another one.",
    ]
