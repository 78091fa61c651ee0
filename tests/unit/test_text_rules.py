"""Text rules: the folding that defeats evasions (core.text), the policy's text section checked
at load (policy.text), the detectors, and match_text's scores and spans on the lines as read."""

import re
from pathlib import Path
from typing import Any

import pytest
from modstream.core.events import Outcome, TextLine, TextReading
from modstream.core.text import fold, fold_term, light
from modstream.policy.engine import Policy, evaluate
from modstream.policy.loader import PolicyError, load_policies
from modstream.policy.text import MAX_MATCHES, MAX_PATTERNS, MAX_TERMS, TextRules, TextVerdict, match_text

THRESHOLDS = {"review_at": 0.5, "block_at": 0.95}


def policy(text: dict[str, Any], **fields: Any) -> Policy:
    labels = fields.pop("labels", dict.fromkeys(text, THRESHOLDS))
    return Policy.model_validate({"id": "p", "version": "1", "labels": labels, "text": text, **fields})


def rules(text: dict[str, Any]) -> TextRules:
    return policy(text).text


def reading(*lines: str | tuple[str, float]) -> TextReading:
    return TextReading(
        regions=len(lines),
        lines=[
            TextLine(text=line, confidence=0.9, box=(0, 0, 1, 1))
            if isinstance(line, str)
            else TextLine(text=line[0], confidence=line[1], box=(0, 0, 1, 1))
            for line in lines
        ],
    )


def spans(verdict: TextVerdict, read: TextReading) -> list[tuple[str, str, int, str]]:
    """(label, rule, line, the span's text as read) of each match."""
    return [(m.label, m.rule, m.line, read.lines[m.line].text[m.start : m.end]) for m in verdict.matches]


def found(text: dict[str, Any], *lines: str) -> list[str]:
    """The spans' texts of every match of these rules in these lines."""
    read = reading(*lines)
    return [span for _, _, _, span in spans(match_text(read, rules(text)), read)]


# --- folding ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("evasion", "text"),
    [
        ("case", "FREE Crypto"),
        ("spacing", "f r e e  c r y p t o"),
        ("punctuation", "fr.ee-cry_pto"),
        ("leet digits", "fr33 crypt0"),
        ("leet symbols", "fr€€ cryp+o"),
        ("repeated letters", "freeeeee cryyyyptooo"),
        ("Cyrillic look-alikes", "fr\u0435\u0435 \u0441ry\u0440t\u043e"),  # IE IE ES ER O
        ("Greek look-alikes", "FR\u0395\u0395 CR\u03a5\u03a1\u03a4\u039f"),  # EPSILON UPSILON RHO TAU OMICRON
        ("full-width", "ｆｒｅｅ ｃｒｙｐｔｏ"),
        ("mathematical bold", "𝐟𝐫𝐞𝐞 𝐜𝐫𝐲𝐩𝐭𝐨"),
        ("circled", "ⓕⓡⓔⓔ ⓒⓡⓨⓟⓣⓞ"),
        ("negative squared", "🅵🆁🅴🅴 🅲🆁🆈🅿🆃🅾"),
        ("precomposed diacritics", "frée crýptö"),
        ("combining diacritics", "fre\u0301e\u0308 cry\u0301pto"),
        ("zero-width", "fr\u200bee\u200d cr\u2060ypto\ufeff"),
        ("soft hyphen", "free cryp\u00adto"),
        ("small capitals", "ꜰʀᴇᴇ ᴄʀʏᴘᴛᴏ"),
        ("all at once", "Ｆ.Ｒ.3\u0435\u200b ¢ʀʏρ7𝟎"),
    ],
)
def test_each_evasion_folds_to_the_plain_phrase(evasion: str, text: str) -> None:
    assert fold(text).text == fold_term("free crypto") == "frecrypto", evasion


def test_leetspeak_only_among_letters() -> None:
    assert fold("free!!").text == "fre"  # a trailing "!!" is punctuation
    assert fold("b!tch").text == "bitch"  # between two letters it is an i
    assert fold("$cam sc@m").text == "scamscam"  # beside one letter
    assert fold("$100 @ 5").text == "1005"  # beside no letter: not a letter
    assert fold("2026").text == "2026"  # a number stays a number
    assert fold("call 5550100").text == "cai5550100"
    assert fold("call5550100").text == "cai5550100"  # glued by OCR: a long run is still a number
    assert fold("fr3333").text == "fre"  # unless it is one digit repeated
    assert fold("h4x0r").text == "haxor"


def test_i_and_l_are_one_letter_but_their_repeats_collapse_first() -> None:
    assert fold_term("kill") == fold_term("k1ll") == fold_term("ki11") == fold_term("KILL") == "kii"
    assert fold_term("hello") == fold_term("he11o") == fold_term("HEIIO") == "heio"
    assert fold_term("kill") not in fold("kid skiing").text  # "kill" is not "ki"
    assert fold_term("kill") in fold("Klinik").text  # the price of merging i and l


def test_repeats_collapse_across_look_alikes_and_leet() -> None:
    assert fold("go0d").text == fold("good").text == fold("g\u043e\u043ed").text == "god"  # Cyrillic o


def test_the_span_maps_back_to_the_source_marks_and_repeats_included() -> None:
    for text, phrase, expected in [
        ("Get FREEEE  crypto!! now", "free crypto", "FREEEE  crypto"),
        ("x fre\u0301e\u0301 y", "free", "fre\u0301e\u0301"),  # the last e's accent is in the span
        ("\u200bѕсаm\u200b!", "scam", "ѕсаm"),
        ("ＦＲＥＥ", "free", "ＦＲＥＥ"),
        ("ß-free straße", "strasse", "straße"),
    ]:
        folded = fold(text)
        start = folded.text.index(fold_term(phrase))
        first, last = folded.source_span(start, start + len(fold_term(phrase)))
        assert text[first:last] == expected


def test_light_keeps_digits_and_spacing_and_undoes_only_the_look_alikes() -> None:
    text = "Call ＋1 (555) 0100 — ѕсаm.соm ٣٤ FRÉE\u200b!"
    lit = light(text)
    assert lit.text == "call +1 (555) 0100 — scam.com 34 frée!"
    start = lit.text.index("scam.com")
    first, last = lit.source_span(start, start + len("scam.com"))
    assert text[first:last] == "ѕсаm.соm"
    assert light("cafe\u0301").text == "café"  # a letter and its marks are composed
    assert light("plain ASCII").text == "plain ascii"


# --- the section at load ------------------------------------------------------------------


def refused(text: dict[str, Any], **fields: Any) -> str:
    with pytest.raises(ValueError) as caught:
        policy(text, **fields)
    return str(caught.value)


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        (r"(a+)\1", "invalid escape sequence: \\1"),  # a backreference
        (r"free(?=crypto)", "invalid perl operator: (?="),  # lookahead
        (r"(?<!not )free", "invalid perl operator: (?<!"),  # lookbehind
        (r"(?>a+)b", "invalid perl operator: (?>"),  # an atomic group
    ],
)
def test_a_pattern_that_needs_backtracking_is_refused_naming_the_label_the_pattern_and_why(
    pattern: str, why: str
) -> None:
    message = refused({"text.scam": {"patterns": ["ok", pattern]}})
    assert f"text.scam: the pattern {pattern!r} is refused: RE2 cannot run it ({why})" in message
    assert "time linear in the text" in message and "exponential" in message


def test_a_pattern_whose_program_is_too_large_is_refused() -> None:
    message = refused({"text.scam": {"patterns": [r"\pL{1000}"]}})
    assert r"text.scam: the pattern '\\pL{1000}' is refused: its program is over RE2's 1024 KiB budget" in message
    assert "pattern too large" in message


def test_a_pattern_catastrophic_for_backtracking_engines_is_accepted_as_re2_runs_it_in_linear_time() -> None:
    # Python's re takes time exponential in the number of a's to find that this does not match.
    scam = rules({"text.scam": {"patterns": [r"(a+)+$"]}})
    assert match_text(reading("a" * 30 + "!"), scam).scores == {"text.scam": 0.0}
    assert match_text(reading("a" * 30), scam).scores == {"text.scam": 0.9}


def test_a_pattern_matching_the_empty_text_is_refused() -> None:
    assert "the pattern 'x*' is refused: it matches the empty text" in refused({"text.scam": {"patterns": ["x*"]}})


def test_the_number_and_size_of_terms_and_patterns_are_bounded() -> None:
    many = [f"term number {n}" for n in range(MAX_TERMS // 2 + 1)]
    message = refused({"text.scam": {"terms": many}, "text.slur": {"terms": many}})
    assert f"{2 * len(many)} terms: at most {MAX_TERMS} in a policy" in message
    patterns = [f"p{n}" for n in range(MAX_PATTERNS + 1)]
    assert f"at most {MAX_PATTERNS}" in refused({"text.scam": {"patterns": patterns}})
    assert "at most 1000 characters" in refused({"text.scam": {"patterns": ["a" * 1001]}})
    assert "at most 200 characters" in refused({"text.scam": {"terms": ["a" * 201]}})


def test_a_term_that_folds_to_almost_nothing_is_refused() -> None:
    message = refused({"text.slur": {"terms": ["a . a . a"]}})
    assert "text.slur: the term 'a . a . a' folds to 'a', under 3 letters" in message


def test_a_text_label_needs_thresholds_or_to_be_ignored() -> None:
    message = refused({"text.scam": {"terms": ["free crypto"]}}, labels={})
    assert "text: text.scam has text rules but no thresholds under labels (nor is it under ignore)" in message
    ignored = policy({"text.scam": {"terms": ["free crypto"]}}, labels={}, ignore=["text.scam"])
    assert match_text(reading("free crypto"), ignored.text).scores == {"text.scam": 0.9}
    assert evaluate({"text.scam": 0.9}, ignored, "c").decision is Outcome.ALLOW


def test_unknown_detectors_fields_and_labels_are_refused() -> None:
    assert "Input should be 'phone', 'email', 'handle' or 'url'" in refused({"text.contact": {"detect": ["fax"]}})
    assert "Extra inputs are not permitted" in refused({"text.scam": {"words": ["free"]}})
    assert "String should match pattern" in refused({"scam": {"terms": ["free crypto"]}})


def test_domain_lists_need_the_url_detector_and_real_domains() -> None:
    message = refused({"text.url": {"allow_domains": ["example.org"]}})
    assert "text.url: allow_domains and deny_domains filter the url detector: add detect: [url]" in message
    message = refused({"text.url": {"detect": ["url"], "deny_domains": ["https://scam.example/x"]}})
    assert "'https://scam.example/x' is not a domain name" in message
    written = rules({"text.url": {"detect": ["url"], "deny_domains": ["*.Scam.Example."]}})
    assert match_text(reading("go to scam.example"), written).scores == {"text.url": 0.9}


def test_a_tenant_changes_text_rules_label_by_label_and_text_labels_are_not_the_models(tmp_path: Path) -> None:
    (tmp_path / "tenants").mkdir()
    (tmp_path / "default.yaml").write_text(
        """
id: default
version: "1"
labels:
  nsfw: {review_at: 0.4, block_at: 0.9}
  text.scam: {review_at: 0.5, block_at: 0.95, queue: scams}
  text.url: {review_at: 0.5, block_at: 1.0}
text:
  text.scam: {terms: [free crypto giveaway]}
  text.url: {detect: [url], deny_domains: [scam-coin.example]}
"""
    )
    (tmp_path / "tenants" / "shop.yaml").write_text(
        """
version: "1-shop"
text:
  text.url: {allow_domains: [shop.example]}
"""
    )
    # Text labels are the worker's, scored from the reading of a model that reads text.
    with pytest.raises(PolicyError, match=re.escape("text rules need a model that reads text (text.present)")):
        load_policies(tmp_path, model_labels=["nsfw"])
    policies = load_policies(tmp_path, model_labels=["nsfw", "text.present"])
    shop = policies.for_tenant("shop").text.root
    assert shop["text.scam"].terms == ["free crypto giveaway"]  # kept from the default
    assert (shop["text.url"].detect, shop["text.url"].deny_domains) == (["url"], ["scam-coin.example"])
    assert shop["text.url"].allow_domains == ["shop.example"]
    (tmp_path / "default.yaml").write_text(
        (tmp_path / "default.yaml")
        .read_text()
        .replace("labels:", "labels:\n  text.typo: {review_at: 0.5, block_at: 1}")
    )
    with pytest.raises(PolicyError, match=re.escape("labels.text.typo: the model has no label 'text.typo'")):
        load_policies(tmp_path, model_labels=["nsfw", "text.present"])


def test_a_reading_decides_through_the_labels_thresholds() -> None:
    scam = policy({"text.scam": {"terms": ["free crypto giveaway"]}}, labels={"text.scam": THRESHOLDS})
    verdict = match_text(reading(("FR33 CRYPT0 G1VEAWAY", 0.7)), scam.text)
    decided = evaluate(verdict.scores, scam, "c")
    assert decided.decision is Outcome.REVIEW and decided.triggered[0].label == "text.scam"
    assert evaluate(match_text(None, scam.text).scores, scam, "c").reasons == ["missing_label:text.scam"]


# --- matching: scores and spans -------------------------------------------------------------


def test_not_read_gives_no_scores_and_read_without_a_match_gives_zeros() -> None:
    both = rules({"text.scam": {"terms": ["free crypto"]}, "text.contact": {"detect": ["phone"]}})
    assert match_text(None, both) == TextVerdict(scores={}, matches=[])
    assert match_text(reading(), both).scores == {"text.contact": 0.0, "text.scam": 0.0}
    assert match_text(reading("a photo of a cat"), both) == TextVerdict(
        scores={"text.contact": 0.0, "text.scam": 0.0}, matches=[]
    )


def test_the_score_is_the_confidence_of_the_best_line_that_matched() -> None:
    scam = rules({"text.scam": {"terms": ["free crypto"]}})
    read = reading(("free crypto", 0.6), ("nothing", 0.99), ("FREE CRYPTO!!", 0.8))
    verdict = match_text(read, scam)
    assert verdict.scores == {"text.scam": 0.8}
    assert spans(verdict, read) == [
        ("text.scam", "term:free crypto", 0, "free crypto"),
        ("text.scam", "term:free crypto", 2, "FREE CRYPTO"),
    ]
    assert [m.confidence for m in verdict.matches] == [0.6, 0.8]


def test_spans_are_the_characters_of_the_line_as_read() -> None:
    text = {
        "text.scam": {"terms": ["free crypto giveaway"], "patterns": [r"send \d+ btc"]},
        "text.url": {"detect": ["url"]},
    }
    read = reading("» Fr\u200b33 ϲrурt0 GIVE\u0301AWAY «", "please SEND 25 ВТС to ѕсаm.ехаmрlе!")
    assert spans(match_text(read, rules(text)), read) == [
        ("text.scam", "term:free crypto giveaway", 0, "Fr\u200b33 ϲrурt0 GIVE\u0301AWAY"),
        ("text.scam", r"pattern:send \d+ btc", 1, "SEND 25 ВТС"),
        ("text.url", "url:scam.example", 1, "ѕсаm.ехаmрlе"),
    ]


def test_a_term_broken_over_two_lines_names_its_first_line_with_the_lower_confidence() -> None:
    scam = rules({"text.scam": {"terms": ["free crypto giveaway"]}})
    read = reading(("Get your FREE", 0.95), ("CRYPTO giveaway now", 0.7))
    verdict = match_text(read, scam)
    assert spans(verdict, read) == [("text.scam", "term:free crypto giveaway", 0, "FREE")]
    assert verdict.scores == {"text.scam": 0.7}
    # A repeat collapsed across the break is no part of the match: it stays in its line.
    read = reading(("free", 0.9), ("everything", 0.5))
    assert match_text(read, rules({"text.scam": {"terms": ["free"]}})).scores == {"text.scam": 0.9}


def test_patterns_see_each_line_for_anchors_and_digits_as_digits() -> None:
    contact = {"text.contact": {"patterns": [r"^call \d{3}$"]}}
    assert found(contact, "call 555", "please call 555", "call 555 now") == ["call 555"]
    assert found({"text.scam": {"patterns": ["frée"]}}, "FRE\u0301E") == ["FRE\u0301E"]


def test_matches_are_bounded_and_the_score_counts_them_all() -> None:
    scam = rules({"text.scam": {"terms": ["scam"]}})
    verdict = match_text(reading(*(["scam " * 30] * 32)), scam)
    assert len(verdict.matches) == MAX_MATCHES and verdict.scores == {"text.scam": 0.9}


# --- detectors ----------------------------------------------------------------------------

PHONE = {"text.contact": {"detect": ["phone"]}}


@pytest.mark.parametrize(
    ("line", "number"),
    [
        ("Call +1 (555) 010-0100 today", "+1 (555) 010-0100"),
        ("call+15550100", "+15550100"),  # OCR keeps no spaces
        ("WhatsApp: +44 20 7946 0958", "+44 20 7946 0958"),
        ("tel 06 12 34 56 78", "06 12 34 56 78"),
        ("555.010.0100", "555.010.0100"),
        ("0049/30/1234567", "0049/30/1234567"),
        ("Call5550100now", "5550100"),
        ("Call ٥٥٥٠١٠٠", "٥٥٥٠١٠٠"),  # Arabic-Indic digits
    ],
)
def test_phone_numbers_in_their_formats(line: str, number: str) -> None:
    assert found(PHONE, line) == [number]


@pytest.mark.parametrize(
    "line",
    [
        "Since 2026",  # a year
        "2019 2020 2021 2022",  # years
        "on 2026-12-07 at 10:30",  # dates
        "07.12.2026",
        "12/07/2026",
        "only $1 299 999",  # prices
        "1 299 999 €",
        "pi is 3.14159265",  # a decimal number
        "card 4111 1111 1111 1111 1111",  # more than 15 digits
        "1 2 3 4 5 6 7",  # counting
        "555-010",  # too short
    ],
)
def test_numbers_that_are_no_phone_numbers(line: str) -> None:
    assert found(PHONE, line) == []


def test_email_addresses_also_spelled_out() -> None:
    email = {"text.contact": {"detect": ["email"]}}
    assert found(email, "write to Bob.Smith+x@scam-coin.example.") == ["Bob.Smith+x@scam-coin.example"]
    assert found(email, "bob at scam dot com", "bob(at)scam(dot)com", "bob [at] scam [dot] example") == [
        "bob at scam dot com",
        "bob(at)scam(dot)com",
        "bob [at] scam [dot] example",
    ]
    assert found(email, "sc@m", "@handle", "meet at noon", "at home dot") == []


def test_handles_but_not_leetspeak_or_email_addresses() -> None:
    handle = {"text.contact": {"detect": ["handle"]}}
    assert found(handle, "follow @scam_guy.", "(@crypto.king)", "@x") == ["@scam_guy", "@crypto.king"]
    assert found(handle, "sc@m", "bob@scam.example", "@ 5pm", "@x.", "@" + "x" * 31) == []


def test_urls_and_bare_domains() -> None:
    url = {"text.url": {"detect": ["url"]}}
    read = reading(
        "visit bit.ly/xyz now",
        "https://scam-coin.example/claim?id=1.",
        "www.Example.com",
        "scam[.]example",
        "hxxp://evil.test",
        "ѕсаm-соіn.example",
    )
    verdict = match_text(read, rules(url))
    assert [(rule, span) for _, rule, _, span in spans(verdict, read)] == [
        ("url:bit.ly", "bit.ly/xyz"),
        ("url:scam-coin.example", "https://scam-coin.example/claim?id=1"),
        ("url:www.example.com", "www.Example.com"),
        ("url:scam.example", "scam[.]example"),
        ("url:evil.test", "hxxp://evil.test"),
        ("url:scam-coin.example", "ѕсаm-соіn.example"),
    ]
    assert found(url, "The end.Then", "pi 3.14", "e.g. this", "bob@scam.example", "file.txt") == []


# --- allowed and denied domains -------------------------------------------------------------


def urls(allow: list[str], deny: list[str], *lines: str) -> list[str]:
    text = {"text.url": {"detect": ["url"], "allow_domains": allow, "deny_domains": deny}}
    read = reading(*lines)
    return [rule for _, rule, _, _ in spans(match_text(read, rules(text)), read)]


def test_with_neither_list_every_url_matches() -> None:
    assert urls([], [], "example.org", "other.com") == ["url:example.org", "url:other.com"]


def test_an_allowed_domain_and_its_subdomains_never_match_and_every_other_url_does() -> None:
    lines = ("example.org", "https://docs.example.org/a", "notexample.org", "example.org.evil.com", "other.com")
    assert urls(["example.org"], [], *lines) == ["url:notexample.org", "url:example.org.evil.com", "url:other.com"]


def test_a_look_alike_of_an_allowed_domain_is_not_allowed() -> None:
    assert urls(["paypal.com"], [], "paypal.com", "раураl.com", "ＰＡＹＰＡＬ.com") == ["url:paypal.com"]


def test_a_denied_domain_always_matches_its_subdomains_and_a_glued_word_too() -> None:
    lines = ("scam-coin.example", "www.scam-coin.example", "visitscam-coin.example", "other.com")
    assert urls([], ["scam-coin.example"], *lines) == [
        "url:scam-coin.example",
        "url:www.scam-coin.example",
        "url:visitscam-coin.example",
    ]  # with only denied domains listed, other URLs do not match
    assert urls(["github.io"], ["evil.github.io"], "evil.github.io", "me.github.io", "x.com") == [
        "url:evil.github.io",
        "url:x.com",
    ]  # denied wins over allowed


def test_a_denied_domain_in_look_alikes_is_still_denied() -> None:
    assert urls([], ["scam-coin.example"], "ѕсаm-соіn.example") == ["url:scam-coin.example"]


def test_the_rule_names_are_what_the_review_page_shows() -> None:
    text = {
        "text.scam": {"terms": ["Free Crypto"], "patterns": ["giveaway"]},
        "text.contact": {"detect": ["phone", "email", "handle"]},
        "text.url": {"detect": ["url"]},
    }
    read = reading("Free crypto giveaway", "@guy bob@x.example +1 555 010 0100", "go.example")
    rule_names = {rule for _, rule, _, _ in spans(match_text(read, rules(text)), read)}
    assert rule_names == {"term:Free Crypto", "pattern:giveaway", "handle", "email", "phone", "url:go.example"}
    assert all(re.fullmatch(r"[a-z]+(:.+)?", name) for name in rule_names)


def test_policies_with_the_same_text_rules_are_equal() -> None:
    text = {"text.scam": {"terms": ["free crypto"], "patterns": ["send \\d+ btc"]}, "text.url": {"detect": ["url"]}}
    assert policy(text) == policy(text)  # compiled anew each time, compared by their sources
    assert policy(text) != policy(text | {"text.scam": {"terms": ["free crypto"]}})


def test_text_present_is_the_models_label_not_a_text_rules() -> None:
    with pytest.raises(ValueError, match=re.escape("text: text.present is the model's label")):
        policy({"text.present": {"terms": ["free crypto"]}}, labels={"text.present": THRESHOLDS})
