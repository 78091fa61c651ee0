"""A tenant's text rules (the policy's ``text`` section) and their matching against what OCR read. Pure.

Per text label (``text.scam``, ``text.contact``, ...), any of:

- ``terms``: phrases matched on the folded forms (``core.text.fold``: case, spacing, leetspeak,
  look-alike letters, diacritics, invisible characters and repeated letters undone): a term
  matches wherever its folded form is in the folded text;
- ``patterns``: regular expressions run by RE2 on the light form (``core.text.light``: digits stay
  digits, spacing stays), case-insensitive, ``^`` and ``$`` at each line's ends. RE2 runs every
  pattern in time linear in the text; what it cannot run that way (backreferences, lookaround)
  it refuses, and so is refused at load, as is a pattern whose program is too large;
- ``detect``: built-in detectors, ``phone``, ``email``, ``handle`` and ``url``;
- ``allow_domains`` / ``deny_domains``, for ``url``: a denied domain always matches (also at the
  end of a longer name: OCR may glue the word before it on, "visitscam-coin.example"); an allowed
  domain or its subdomain never does, unless written with look-alike letters; other URLs match
  unless the rule lists only denied domains.

``match_text`` gives each rule's label the recognition confidence of the best line where it
matched (0.0 when none did; nothing at all when the image was not read). Terms and patterns
also match across a line break (a phrase broken over two lines): such a match names the span in
its first line, with the lower confidence of the lines it covers. Detectors stay in one line.
"""

import unicodedata
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, NamedTuple, Self

import ahocorasick_rs
import re2
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, RootModel, model_validator

from modstream.core.events import TEXT_MAX_CHARS, TextMatch, TextReading
from modstream.core.text import fold, fold_term, light

# Bounds on one policy's text section: matching a reading (at most 32 lines of 200 characters)
# stays within a few milliseconds of CPU (docs/policies.md, "Text rules").
MAX_TERMS = 1000
MAX_PATTERNS = 100
MAX_PATTERN_CHARS = 1000
MAX_DOMAINS = 1000
MIN_FOLDED = 3  # a shorter folded term is inside too many ordinary words
PATTERN_MEMORY = 1 << 20  # RE2's budget for one pattern's program and its DFA cache
MAX_MATCHES = 64  # spans kept per reading; scores count every match

Detector = Literal["phone", "email", "handle", "url"]
TextLabel = Annotated[str, Field(pattern=r"^text\.[a-z0-9][a-z0-9_.-]{0,62}$")]


def _domain(value: str) -> str:
    domain = unicodedata.normalize("NFKC", value).strip().casefold().removeprefix("*.").rstrip(".")
    labels = domain.split(".")
    plain = all(char.isalnum() or char in "-." for char in domain)
    if len(domain) > 253 or len(labels) < 2 or not plain or not all(0 < len(label) <= 63 for label in labels):
        raise ValueError(f"{value!r} is not a domain name: write it as example.com (no scheme, path or port)")
    return domain


Domain = Annotated[str, AfterValidator(_domain)]
Term = Annotated[str, Field(min_length=1, max_length=TEXT_MAX_CHARS)]
Pattern = Annotated[str, Field(min_length=1, max_length=MAX_PATTERN_CHARS)]


class TextRule(BaseModel):
    """What makes one text label's evidence."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    terms: list[Term] = Field(default_factory=list, description="phrases, matched folded")
    patterns: list[Pattern] = Field(default_factory=list, description="RE2 regular expressions on the light form")
    detect: list[Detector] = Field(default_factory=list, description="built-in detectors")
    allow_domains: list[Domain] = Field(
        default_factory=list, max_length=MAX_DOMAINS, description="url: these and their subdomains never match"
    )
    deny_domains: list[Domain] = Field(
        default_factory=list, max_length=MAX_DOMAINS, description="url: these always match"
    )


class TextRules(RootModel[dict[TextLabel, TextRule]]):
    """A policy's text section: text label -> its rule. Compiled once, when the policy is loaded."""

    model_config = ConfigDict(frozen=True)

    _compiled: "_Compiled" = PrivateAttr()

    @model_validator(mode="after")
    def _compile(self) -> Self:
        rules = self.root
        terms = sum(len(rule.terms) for rule in rules.values())
        if terms > MAX_TERMS:
            raise ValueError(f"{terms} terms: at most {MAX_TERMS} in a policy (one folded pass finds them all)")
        patterns = sum(len(rule.patterns) for rule in rules.values())
        if patterns > MAX_PATTERNS:
            raise ValueError(f"{patterns} patterns: at most {MAX_PATTERNS} in a policy (RE2 runs each over the text)")
        for label, rule in rules.items():
            if (rule.allow_domains or rule.deny_domains) and "url" not in rule.detect:
                raise ValueError(f"{label}: allow_domains and deny_domains filter the url detector: add detect: [url]")
            for term in rule.terms:
                if len(folded := fold_term(term)) < MIN_FOLDED:
                    raise ValueError(
                        f"{label}: the term {term!r} folds to {folded!r}, under {MIN_FOLDED} letters or digits "
                        "(case, spacing, punctuation, look-alikes and repeated letters are folded away): it would "
                        "match inside ordinary words"
                    )
        self._compiled = _Compiled.of(rules)
        return self

    def labels(self) -> set[str]:
        return set(self.root)


@dataclass(frozen=True)
class TextVerdict:
    """What the text rules found in one reading."""

    scores: dict[str, float]  # every rule label; empty when the image was not read
    matches: list[TextMatch]  # by line and position, at most MAX_MATCHES


def match_text(reading: TextReading | None, rules: TextRules) -> TextVerdict:
    """The text labels' scores and the spans that matched; nothing when there was no reading
    (not read is unknown, never "no scam")."""
    if reading is None:
        return TextVerdict(scores={}, matches=[])
    hits = sorted(set(rules._compiled.find(_Lines(reading))))
    scores = dict.fromkeys(sorted(rules.root), 0.0)
    for hit in hits:
        scores[hit.label] = max(scores[hit.label], hit.confidence)
    return TextVerdict(scores=scores, matches=[TextMatch(**hit._asdict()) for hit in hits[:MAX_MATCHES]])


class _Hit(NamedTuple):
    """A match before it is a TextMatch (a dense reading has hundreds; only the first are kept)."""

    line: int
    start: int
    end: int
    label: str
    rule: str
    confidence: float


# --- compiling -----------------------------------------------------------------------------


def compile_pattern(pattern: str) -> Any:
    """The pattern as RE2 runs it, or ValueError saying why it cannot run in linear time."""
    options = re2.Options()
    options.case_sensitive = False
    options.max_mem = PATTERN_MEMORY
    options.log_errors = False
    try:
        compiled = re2.compile("(?m)" + pattern, options)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        if "too large" in reason:
            raise ValueError(
                f"its program is over RE2's {PATTERN_MEMORY >> 10} KiB budget ({reason}): write a smaller pattern"
            ) from exc
        raise ValueError(
            f"RE2 cannot run it ({reason}). Patterns run on RE2, which takes time linear in the text whatever "
            "the pattern; constructs that need backtracking (backreferences, lookahead, lookbehind, possessive "
            "or atomic groups) can take exponential time and are not supported"
        ) from exc
    if compiled.search("") is not None:
        raise ValueError("it matches the empty text, so it would match every line")
    return compiled


@dataclass(frozen=True)
class _Pattern:
    label: str
    pattern: str
    # re2's compiled pattern (the package has no type information); equal policies have equal
    # sources, and compiled objects compare by identity
    compiled: Any = field(compare=False)


@dataclass(frozen=True)
class _Url:
    label: str
    allow: frozenset[str]
    deny: frozenset[str]

    def matches(self, domain: str, written: str) -> bool:
        if any(domain[cut:] in self.deny for cut in range(len(domain))):
            return True
        # A look-alike letter makes it another domain, whatever it reads as.
        parents = {domain} | {domain[cut + 1 :] for cut, char in enumerate(domain) if char == "."}
        if written == domain and not parents.isdisjoint(self.allow):
            return False
        return bool(self.allow) or not self.deny


@dataclass(frozen=True)
class _Compiled:
    terms: tuple[str, ...]  # folded, each once
    term_rules: tuple[tuple[tuple[str, str], ...], ...]  # per folded term: (label, term as written)
    automaton: ahocorasick_rs.AhoCorasick | None = field(compare=False)
    patterns: tuple[_Pattern, ...]
    detectors: dict[str, tuple[str, ...]]  # phone, email, handle -> their labels
    urls: tuple[_Url, ...]

    @classmethod
    def of(cls, rules: dict[str, TextRule]) -> "_Compiled":
        by_term: dict[str, list[tuple[str, str]]] = {}
        patterns = []
        for label, rule in rules.items():
            for term in rule.terms:
                by_term.setdefault(fold_term(term), []).append((label, term))
            for pattern in rule.patterns:
                try:
                    patterns.append(_Pattern(label, pattern, compile_pattern(pattern)))
                except ValueError as exc:
                    raise ValueError(f"{label}: the pattern {pattern!r} is refused: {exc}") from exc
        terms = tuple(by_term)
        return cls(
            terms=terms,
            term_rules=tuple(tuple(dict.fromkeys(by_term[term])) for term in terms),
            automaton=ahocorasick_rs.AhoCorasick(terms) if terms else None,
            patterns=tuple(patterns),
            detectors={
                name: tuple(label for label, rule in rules.items() if name in rule.detect)
                for name in ("phone", "email", "handle")
            },
            urls=tuple(
                _Url(label, frozenset(rule.allow_domains), frozenset(rule.deny_domains))
                for label, rule in rules.items()
                if "url" in rule.detect
            ),
        )

    def find(self, lines: "_Lines") -> Iterator[_Hit]:
        if self.automaton is not None:
            folded = fold(lines.text)
            for number, start, end in self.automaton.find_matches_as_indexes(folded.text, overlapping=True):
                first, last = folded.source_span(start, end)
                for label, term in self.term_rules[number]:
                    yield from lines.match(label, f"term:{term}", first, last, anchor=folded.origin[end - 1])
        if not (self.patterns or any(self.detectors.values()) or self.urls):
            return
        lit = light(lines.text)
        for pattern in self.patterns:
            for found in pattern.compiled.finditer(lit.text):
                start, end = found.span()
                if start < end:
                    first, last = lit.source_span(start, end)
                    yield from lines.match(pattern.label, f"pattern:{pattern.pattern}", first, last)
        for name, find in (("phone", _phones), ("email", _emails), ("handle", _handles)):
            if labels := self.detectors[name]:
                for start, end in find(lit.text):
                    first, last = lit.source_span(start, end)
                    for label in labels:
                        yield from lines.match(label, name, first, last)
        if self.urls:
            for start, end in _urls(lit.text):
                first, last = lit.source_span(start, end)
                domain, written = _host(lit.text[start:end]), _host(_as_written(lines.text[first:last]))
                for url in self.urls:
                    if domain and url.matches(domain, written):
                        yield from lines.match(url.label, f"url:{domain}", first, last)


class _Lines:
    """A reading's lines as one text, joined by line breaks, and the way back to each line."""

    def __init__(self, reading: TextReading) -> None:
        texts = [line.text.replace("\n", " ") for line in reading.lines]
        self.text = "\n".join(texts)
        self.starts = [0]
        for text in texts[:-1]:
            self.starts.append(self.starts[-1] + len(text) + 1)
        self.lengths = [len(text) for text in texts]
        self.confidences = [line.confidence for line in reading.lines]

    def match(self, label: str, rule: str, first: int, last: int, anchor: int | None = None) -> Iterable[_Hit]:
        """The match of source characters [first, last) as a span of its first line; ``anchor``:
        the source character its last folded character came from (a collapsed repeat may run on
        into the next line without the match needing it)."""
        while first < last and self.text[first] == "\n":
            first += 1
        while last > first and self.text[last - 1] == "\n":
            last -= 1
        if first == last:
            return []
        line = bisect_right(self.starts, first) - 1
        final = bisect_right(self.starts, (last if anchor is None else anchor + 1) - 1) - 1
        start = first - self.starts[line]
        end = min(last - self.starts[line], self.lengths[line])
        confidence = min(self.confidences[line : final + 1])
        return [_Hit(line, start, end, label, rule, confidence)]


# --- detectors (on the light form: casefolded, look-alikes read as Latin, digits as ASCII) -----


def _options() -> Any:
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False
    return options


_TLDS = (
    "com|net|org|info|biz|edu|gov|mil|int|io|co|me|app|dev|xyz|top|online|site|shop|store|club|live|tech|"
    "link|click|space|website|fun|icu|vip|win|bid|loan|work|today|news|pro|cloud|email|digital|money|"
    "finance|life|world|lol|best|buzz|cam|rest|bar|monster|cfd|sbs|example|test|invalid|localhost|onion|"
    "xn--[a-z0-9-]{2,59}|[a-z]{2}"
)
# Unbounded repeats, not counted ones: a counted repeat of a Unicode class is a copy of the class
# per count, and RE2's program grows with it (the e-mail pattern's {1,64} made 284,000
# instructions and 1.5 ms per reading; with + it has 6,400 and 0.01 ms).
_LABEL = r"[\pL\pN](?:[\pL\pN-]*[\pL\pN])?"
_DOT = r"(?:\.|\[\.\]|\(\.\))"  # defanged dots too: "scam[.]example"
_URL_TAIL = r"[^\s<>\"'`]"
_URL = re2.compile(
    rf"(?:https?|hxxps?|ftp)://{_URL_TAIL}+"
    rf"|{_LABEL}(?:{_DOT}{_LABEL})*{_DOT}(?:{_TLDS})\b(?::[0-9]+)?(?:/{_URL_TAIL}*)?",
    _options(),
)
_SPELLED_DOT = r"[ \t]*(?:\.|\(dot\)|\[dot\]|\{dot\}|[ \t]dot[ \t])[ \t]*"
_EMAIL = re2.compile(
    r"[\pL\pN._%+-]+@[\pL\pN-]+(?:\.[\pL\pN-]+)*\.\pL\pL+"
    rf"|[\pL\pN._%+-]+[ \t]*(?:\(at\)|\[at\]|\{{at\}}|[ \t]at[ \t])[ \t]*[\pL\pN-]+"
    rf"(?:{_SPELLED_DOT}[\pL\pN-]+)*?{_SPELLED_DOT}(?:{_TLDS})\b",
    _options(),
)
# After a space or punctuation: "sc@m" is leetspeak, "me@x.com" an e-mail address.
_HANDLE = re2.compile(r"(?:^|[^\pL\pN_.@])(@[\pL\pN_][\pL\pN_.]+)", _options())
_HANDLE_CHARS = 30  # the longest platforms allow (Instagram)
_PHONE = re2.compile(r"\+?\(?[0-9][0-9 \t().\-/]{5,30}[0-9]", _options())
_TRAILING = ".,;:!?)]}'\""


def _urls(text: str) -> Iterator[tuple[int, int]]:
    for found in _URL.finditer(text):
        start, end = found.span()
        while end > start and text[end - 1] in _TRAILING:
            end -= 1
        if start > 0 and text[start - 1] == "@":
            continue  # an e-mail address's domain
        yield start, end


def _emails(text: str) -> Iterator[tuple[int, int]]:
    for found in _EMAIL.finditer(text):
        yield found.span()


def _handles(text: str) -> Iterator[tuple[int, int]]:
    for found in _HANDLE.finditer(text):
        start, end = found.span(1)
        while text[end - 1] == ".":
            end -= 1
        if 2 <= end - start - 1 <= _HANDLE_CHARS:
            yield start, end


def _phones(text: str) -> Iterator[tuple[int, int]]:
    for found in _PHONE.finditer(text):
        start, end = found.span()
        if _is_phone(text, start, end):
            yield start, end


def _is_phone(text: str, start: int, end: int) -> bool:
    candidate = text[start:end]
    groups = [group for group in _split_digits(candidate) if group]
    digits = sum(len(group) for group in groups)
    if not 7 <= digits <= 15:
        return False
    if (start > 0 and text[start - 1].isdigit()) or (end < len(text) and text[end].isdigit()):
        return False  # part of a longer number
    if _currency(text[max(0, start - 2) : start]) or _currency(text[end : end + 2]):
        return False  # a price
    separators = candidate.strip("+(").translate(str.maketrans("", "", "0123456789"))
    if separators == ".":
        return False  # a decimal number
    if len(groups) > 6 or sum(len(group) == 1 for group in groups) > 2:
        return False  # a list of small numbers
    if all(len(group) == 4 and 1900 <= int(group) <= 2099 for group in groups):
        return False  # years
    return not _starts_with_date(candidate, groups)


def _split_digits(text: str) -> list[str]:
    return "".join(char if char.isdigit() else " " for char in text).split(" ")


def _starts_with_date(candidate: str, groups: list[str]) -> bool:
    if len(groups) < 3:
        return False
    lengths = tuple(len(group) for group in groups[:3])
    if lengths == (4, 2, 2):
        month = int(groups[1])
    elif lengths[2] == 4 and lengths[0] <= 2 and lengths[1] <= 2:
        month = min(int(groups[0]), int(groups[1]))  # day-month or month-day
    else:
        return False
    between = candidate[len(groups[0]) : len(groups[0]) + 1]
    return between in "-./" and 1 <= month <= 12


def _currency(text: str) -> bool:
    return any(unicodedata.category(char) == "Sc" for char in text)


def _as_written(text: str) -> str:
    """A source span with only what cannot change a domain undone (compatibility forms, case,
    invisible characters): look-alike letters stay as they are."""
    normal = unicodedata.normalize("NFKC", text).casefold()
    return "".join(char for char in normal if unicodedata.category(char) != "Cf")


def _host(url: str) -> str:
    rest = url.split("://", 1)[-1]
    for stop in "/?#":
        rest = rest.split(stop, 1)[0]
    host = rest.rsplit("@", 1)[-1].replace("[.]", ".").replace("(.)", ".")
    return host.split(":", 1)[0].strip(".")
