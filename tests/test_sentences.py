from qa.sentences import split_sentences


def test_russian_abbreviation_does_not_end_a_sentence() -> None:
    text = "В Японии размещено более 50 тыс. американских военнослужащих. Управление осуществляет глава."
    spans = split_sentences(text)
    assert [s.text for s in spans] == [
        "В Японии размещено более 50 тыс. американских военнослужащих.",
        "Управление осуществляет глава.",
    ]


def test_offsets_point_into_the_text_and_respect_bounds() -> None:
    text = "  First one. Second «quoted» one! 第一句。第二句？\nThird line\n\nFourth? Yes."
    spans = split_sentences(text)
    assert [s.text for s in spans] == [
        "First one.",
        "Second «quoted» one!",
        "第一句。",
        "第二句？",
        "Third line",
        "Fourth?",
        "Yes.",
    ]
    for span in spans:
        assert text[span.start : span.end] == span.text
    inner = split_sentences(text, 13, 40)
    assert all(13 <= s.start and s.end <= 40 for s in inner)
    assert inner[0].text == "Second «quoted» one!"
