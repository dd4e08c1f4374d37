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


def test_full_stops_of_scripts_without_case_end_sentences() -> None:
    """Hindi's danda, Urdu's full stop, the Arabic question mark, Amharic's and Armenian's full stops: a
    paragraph in these scripts is its sentences, each highlighted and scored alone, not one block."""
    cases = {
        "नगर की जनसंख्या चालीस हज़ार है। यहाँ एक पुराना किला है॥ मेला मार्च में होता है।": [
            "नगर की जनसंख्या चालीस हज़ार है।",
            "यहाँ एक पुराना किला है॥",
            "मेला मार्च में होता है।",
        ],
        "شہر کی آبادی چالیس ہزار ہے۔ یہاں ایک قلعہ ہے۔": ["شہر کی آبادی چالیس ہزار ہے۔", "یہاں ایک قلعہ ہے۔"],
        "أين القلعة؟ القلعة على التل.": ["أين القلعة؟", "القلعة على التل."],
        "ከተማው ትልቅ ነው። ገበያው ዛሬ ነው።": ["ከተማው ትልቅ ነው።", "ገበያው ዛሬ ነው።"],
        "Քաղաքը մեծ է։ Շուկան այսօր է։": ["Քաղաքը մեծ է։", "Շուկան այսօր է։"],
    }
    for text, sentences in cases.items():
        assert [s.text for s in split_sentences(text)] == sentences


def test_a_thai_paragraph_is_cut_into_its_sentences_not_at_every_space() -> None:
    """Thai puts spaces between sentences but also around numbers and between list items: PyThaiNLP's CRF
    model tells them apart, where cutting at the spaces would leave fragments such as "308" or "หวาน"."""
    sentences = [
        "อาหารไทยมีชื่อเสียงเรื่องรสชาติเผ็ด เปรี้ยว หวาน และเค็มที่กลมกล่อม",
        "ในปี 2007 มีนักท่องเที่ยว 14 ล้านคน",
        "ทีมมีแนวรับที่เสียคะแนนเพียง 308 แต้ม และอยู่ในอันดับที่ 6 ของลีก",
    ]
    text = "Intro. " + " ".join(sentences)
    spans = split_sentences(text)
    assert [s.text for s in spans] == ["Intro.", *sentences]
    assert all(text[s.start : s.end] == s.text for s in spans)


def test_a_thai_unit_after_a_number_stays_in_its_sentence() -> None:
    """The CRF model cuts a paragraph's last "54,000 นาย" (troops) before its unit; a lone word is no sentence."""
    sentences = [
        "รัฐมนตรีกลาโหมญี่ปุ่นพบกับรัฐมนตรีกลาโหมสหรัฐที่กรุงโตเกียวเมื่อวันพุธ",
        "มีทหารอเมริกันประจำการในญี่ปุ่นประมาณ 54,000 นาย",
    ]
    text = " ".join(sentences)
    spans = split_sentences(text)
    assert [s.text for s in spans] == sentences
    assert all(text[s.start : s.end] == s.text for s in spans)


def test_an_abbreviation_before_any_lower_case_letter_does_not_end_a_sentence() -> None:
    """The «тыс.» rule in every cased script, not only the letters of the languages it was written for."""
    cases = {
        "Тут живе понад 50 тис. їхніх родин. Місто велике.": ["Тут живе понад 50 тис. їхніх родин.", "Місто велике."],
        "Było ok. łodzi dwudziestu. Port jest duży.": ["Było ok. łodzi dwudziestu.", "Port jest duży."],
        "Yaklaşık 50 bin yak. şehir var. Liman büyük.": ["Yaklaşık 50 bin yak. şehir var.", "Liman büyük."],
    }
    for text, sentences in cases.items():
        assert [s.text for s in split_sentences(text)] == sentences


def test_an_initial_or_a_title_does_not_end_a_sentence() -> None:
    """ "Rajendra K." | "Pachauri" and "charted the St." | "Johns River" were two sentences each, so neither half
    held the answer to "who chaired the IPCC?" (docs/quality.md); a Roman numeral still ends one."""
    cases = {
        "Its chair was Rajendra K. Pachauri, elected in 2002. He resigned in 2015.": [
            "Its chair was Rajendra K. Pachauri, elected in 2002.",
            "He resigned in 2015.",
        ],
        "Министр обороны С. Шойгу прибыл в Токио. Переговоры начались.": [
            "Министр обороны С. Шойгу прибыл в Токио.",
            "Переговоры начались.",
        ],
        "Ribault charted the St. Johns River in 1562. Dr. Müller lived there.": [
            "Ribault charted the St. Johns River in 1562.",
            "Dr. Müller lived there.",
        ],
        "It ended with World War I. Peace followed.": ["It ended with World War I.", "Peace followed."],
    }
    for text, sentences in cases.items():
        assert [s.text for s in split_sentences(text)] == sentences
