"""Statements of reasons as the EU DSA Transparency Database takes them (Art. 17 and 24(5) DSA).

The vocabulary and the rules are read from the database's public source
(github.com/digital-services-act/transparency-database at 69e80a0, 2026-06-24:
``app/Models/Statement.php``, ``app/Http/Requests/StatementStoreRequest.php``,
``resources/markdown/api-documentation.md``). The API takes the constant names (keys), not
their labels. ``Statement`` refuses what the server refuses, and more: end dates before the
application date and a missing territorial scope (the documentation's rules, which its code
does not check), and text that looks like personal data (Art. 24(5): the platform must
keep it out; the server checks nothing).
"""

import re
from datetime import date
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

DecisionGround = Literal["DECISION_GROUND_ILLEGAL_CONTENT", "DECISION_GROUND_INCOMPATIBLE_CONTENT"]
ContentType = Literal[
    "CONTENT_TYPE_APP",
    "CONTENT_TYPE_AUDIO",
    "CONTENT_TYPE_IMAGE",
    "CONTENT_TYPE_PRODUCT",
    "CONTENT_TYPE_SYNTHETIC_MEDIA",
    "CONTENT_TYPE_TEXT",
    "CONTENT_TYPE_VIDEO",
    "CONTENT_TYPE_OTHER",
]
Category = Literal[
    "STATEMENT_CATEGORY_ANIMAL_WELFARE",
    "STATEMENT_CATEGORY_CONSUMER_INFORMATION",
    "STATEMENT_CATEGORY_CYBER_VIOLENCE",
    "STATEMENT_CATEGORY_CYBER_VIOLENCE_AGAINST_WOMEN",
    "STATEMENT_CATEGORY_DATA_PROTECTION_AND_PRIVACY_VIOLATIONS",
    "STATEMENT_CATEGORY_ILLEGAL_OR_HARMFUL_SPEECH",
    "STATEMENT_CATEGORY_INTELLECTUAL_PROPERTY_INFRINGEMENTS",
    "STATEMENT_CATEGORY_NEGATIVE_EFFECTS_ON_CIVIC_DISCOURSE_OR_ELECTIONS",
    "STATEMENT_CATEGORY_NOT_SPECIFIED_NOTICE",
    "STATEMENT_CATEGORY_OTHER_VIOLATION_TC",
    "STATEMENT_CATEGORY_PROTECTION_OF_MINORS",
    "STATEMENT_CATEGORY_RISK_FOR_PUBLIC_SECURITY",
    "STATEMENT_CATEGORY_SCAMS_AND_FRAUD",
    "STATEMENT_CATEGORY_SELF_HARM",
    "STATEMENT_CATEGORY_UNSAFE_AND_PROHIBITED_PRODUCTS",
    "STATEMENT_CATEGORY_VIOLENCE",
]
Keyword = Literal[
    "KEYWORD_ADULT_SEXUAL_MATERIAL",
    "KEYWORD_AGE_SPECIFIC_RESTRICTIONS",
    "KEYWORD_AGE_SPECIFIC_RESTRICTIONS_MINORS",
    "KEYWORD_ANIMAL_HARM",
    "KEYWORD_BIOMETRIC_DATA_BREACH",
    "KEYWORD_BULLYING_AGAINST_GIRLS",
    "KEYWORD_CHILD_SEXUAL_ABUSE_MATERIAL",
    "KEYWORD_CHILD_SEXUAL_ABUSE_MATERIAL_DEEPFAKE",
    "KEYWORD_CONTENT_PROMOTING_EATING_DISORDERS",
    "KEYWORD_COORDINATED_HARM",
    "KEYWORD_COPYRIGHT_INFRINGEMENT",
    "KEYWORD_CYBER_BULLYING_INTIMIDATION",
    "KEYWORD_CYBER_HARASSMENT",
    "KEYWORD_CYBER_HARASSMENT_AGAINST_WOMEN",
    "KEYWORD_CYBER_INCITEMENT",
    "KEYWORD_CYBER_STALKING",
    "KEYWORD_CYBER_STALKING_AGAINST_WOMEN",
    "KEYWORD_DATA_FALSIFICATION",
    "KEYWORD_DEFAMATION",
    "KEYWORD_DESIGN_INFRINGEMENT",
    "KEYWORD_DISCRIMINATION",
    "KEYWORD_FEMALE_GENDERED_DISINFORMATION",
    "KEYWORD_GEOGRAPHIC_INDICATIONS_INFRINGEMENT",
    "KEYWORD_GEOGRAPHICAL_REQUIREMENTS",
    "KEYWORD_GOODS_SERVICES_NOT_PERMITTED",
    "KEYWORD_GROOMING_SEXUAL_ENTICEMENT_MINORS",
    "KEYWORD_HATE_SPEECH",
    "KEYWORD_HIDDEN_ADVERTISEMENT",
    "KEYWORD_HUMAN_EXPLOITATION",
    "KEYWORD_HUMAN_TRAFFICKING",
    "KEYWORD_ILLEGAL_ORGANIZATIONS",
    "KEYWORD_IMPERSONATION_ACCOUNT_HIJACKING",
    "KEYWORD_INAUTHENTIC_ACCOUNTS",
    "KEYWORD_INAUTHENTIC_LISTINGS",
    "KEYWORD_INAUTHENTIC_USER_REVIEWS",
    "KEYWORD_INCITEMENT_AGAINST_WOMEN",
    "KEYWORD_INCITEMENT_VIOLENCE_HATRED",
    "KEYWORD_INSUFFICIENT_INFORMATION_ON_TRADERS",
    "KEYWORD_LANGUAGE_REQUIREMENTS",
    "KEYWORD_MISINFORMATION_DISINFORMATION",
    "KEYWORD_MISLEADING_INFO_CONSUMER_RIGHTS",
    "KEYWORD_MISLEADING_INFO_GOODS_SERVICES",
    "KEYWORD_MISSING_PROCESSING_GROUND",
    "KEYWORD_NON_CONSENSUAL_IMAGE_SHARING",
    "KEYWORD_NON_CONSENSUAL_IMAGE_SHARING_AGAINST_WOMEN",
    "KEYWORD_NON_CONSENSUAL_MATERIAL_DEEPFAKE",
    "KEYWORD_NON_CONSENSUAL_MATERIAL_DEEPFAKE_AGAINST_WOMEN",
    "KEYWORD_NONCOMPLIANCE_PRICING",
    "KEYWORD_NUDITY",
    "KEYWORD_PATENT_INFRINGEMENT",
    "KEYWORD_PHISHING",
    "KEYWORD_PROHIBITED_PRODUCTS",
    "KEYWORD_PYRAMID_SCHEMES",
    "KEYWORD_RIGHT_TO_BE_FORGOTTEN",
    "KEYWORD_RISK_ENVIRONMENTAL_DAMAGE",
    "KEYWORD_RISK_PUBLIC_HEALTH",
    "KEYWORD_SELF_MUTILATION",
    "KEYWORD_STALKING",
    "KEYWORD_SUICIDE",
    "KEYWORD_TERRORIST_CONTENT",
    "KEYWORD_TRADE_SECRET_INFRINGEMENT",
    "KEYWORD_TRADEMARK_INFRINGEMENT",
    "KEYWORD_TRAFFICKING_WOMEN_GIRLS",
    "KEYWORD_UNLAWFUL_SALE_ANIMALS",
    "KEYWORD_UNSAFE_CHALLENGES",
    "KEYWORD_UNSAFE_PRODUCTS",
    "KEYWORD_VIOLATION_EU_LAW",
    "KEYWORD_VIOLATION_NATIONAL_LAW",
    "KEYWORD_OTHER",
]
Visibility = Literal[
    "DECISION_VISIBILITY_CONTENT_REMOVED",
    "DECISION_VISIBILITY_CONTENT_DISABLED",
    "DECISION_VISIBILITY_CONTENT_DEMOTED",
    "DECISION_VISIBILITY_CONTENT_AGE_RESTRICTED",
    "DECISION_VISIBILITY_CONTENT_INTERACTION_RESTRICTED",
    "DECISION_VISIBILITY_CONTENT_LABELLED",
    "DECISION_VISIBILITY_OTHER",
]
SourceType = Literal[
    "SOURCE_ARTICLE_16", "SOURCE_TRUSTED_FLAGGER", "SOURCE_TYPE_OTHER_NOTIFICATION", "SOURCE_VOLUNTARY"
]
AutomatedDecision = Literal[
    "AUTOMATED_DECISION_FULLY", "AUTOMATED_DECISION_PARTIALLY", "AUTOMATED_DECISION_NOT_AUTOMATED"
]
Country = Literal[
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE",
    "IS", "IT", "LI", "LT", "LU", "LV", "MT", "NL", "NO", "PL", "PT", "RO", "SE", "SI", "SK",
]  # fmt: skip
EEA: tuple[Country, ...] = Country.__args__  # type: ignore[attr-defined]
EU: tuple[Country, ...] = tuple(c for c in EEA if c not in ("IS", "LI", "NO"))

PUID = r"^[a-zA-Z0-9_-]+$"
Puid = Annotated[str, StringConstraints(min_length=1, max_length=500, pattern=PUID)]
# The server's bounds (a timestamp column ends in 2038).
EARLIEST_CONTENT, EARLIEST_APPLICATION, LATEST = date(2000, 1, 1), date(2020, 1, 1), date(2038, 1, 1)
BATCH_LIMIT = 100  # statements per call of POST /api/v1/statements

# What would put a person in the public database: contact details, network addresses,
# handles and account numbers. Free text is screened; nothing is sent that matches.
_PERSONAL = {
    "an e-mail address": re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+"),
    # Nine digits or more with single separators: not a date, a score or a list of scores.
    "a phone number": re.compile(r"(?<![\w.])\+?\d(?:[ ()/-]{0,2}\d){8,}(?![\w.])"),
    "an IP address": re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b|\b[0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{0,4}){4,7}\b"),
    "a user handle": re.compile(r"(?<![\w.])@[A-Za-z0-9_.]{2,}"),
    "a web address": re.compile(r"\bhttps?://\S+|\bwww\.\S+"),
    "an IBAN": re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){3,7}\b"),
}


def personal_data(text: str) -> list[str]:
    """What in ``text`` looks like personal data, by kind (none: nothing found)."""
    return [kind for kind, pattern in _PERSONAL.items() if pattern.search(text)]


Text500 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Text2000 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class Statement(BaseModel):
    """One statement of reasons, the body of ``POST /api/v1/statement`` (fields the server
    would drop or refuse as ``null`` are left out of ``body()``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    decision_visibility: list[Visibility] = Field(min_length=1)
    decision_ground: DecisionGround
    illegal_content_legal_ground: Text500 | None = None
    illegal_content_explanation: Text2000 | None = None
    incompatible_content_ground: Text500 | None = None
    incompatible_content_explanation: Text2000 | None = None
    content_type: list[ContentType] = Field(min_length=1)
    category: Category
    category_specification: list[Keyword] = Field(default_factory=list)
    territorial_scope: list[Country] = Field(min_length=1)
    content_date: date
    application_date: date
    end_date_visibility_restriction: date | None = None
    decision_facts: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=5000)]
    source_type: SourceType
    automated_detection: Literal["Yes", "No"]
    automated_decision: AutomatedDecision
    puid: Puid

    @field_validator("decision_visibility", "content_type", "category_specification", "territorial_scope")
    @classmethod
    def _once_each(cls, values: list[str]) -> list[str]:
        return list(dict.fromkeys(values))  # the batch endpoint stores repeats as sent

    @model_validator(mode="after")
    def _rules(self) -> Self:
        if "DECISION_VISIBILITY_OTHER" in self.decision_visibility or "CONTENT_TYPE_OTHER" in self.content_type:
            raise ValueError(
                "an 'other' restriction or content type needs its explanation, which modstream never sends"
            )
        grounds = {
            "DECISION_GROUND_ILLEGAL_CONTENT": ("illegal_content_legal_ground", "illegal_content_explanation"),
            "DECISION_GROUND_INCOMPATIBLE_CONTENT": ("incompatible_content_ground", "incompatible_content_explanation"),
        }
        for ground, needed in grounds.items():
            for name in needed:
                given = getattr(self, name) is not None
                if ground == self.decision_ground and not given:
                    raise ValueError(f"{name} is required for {ground}")
                if ground != self.decision_ground and given:
                    raise ValueError(f"{name} belongs to {ground}, not to {self.decision_ground}")
        if not EARLIEST_CONTENT <= self.content_date <= LATEST:
            raise ValueError(f"content_date {self.content_date} is outside {EARLIEST_CONTENT} to {LATEST}")
        if not EARLIEST_APPLICATION <= self.application_date <= LATEST:
            raise ValueError(f"application_date {self.application_date} is outside {EARLIEST_APPLICATION} to {LATEST}")
        if self.content_date > self.application_date:
            raise ValueError(f"content_date {self.content_date} is after application_date {self.application_date}")
        end = self.end_date_visibility_restriction
        if end is not None and not self.application_date <= end <= LATEST:
            raise ValueError(f"end_date_visibility_restriction {end} is before application_date or after {LATEST}")
        for name in (
            "decision_facts",
            "illegal_content_legal_ground",
            "illegal_content_explanation",
            "incompatible_content_ground",
            "incompatible_content_explanation",
        ):
            text = getattr(self, name)
            if text is not None and (found := personal_data(text)):
                raise ValueError(
                    f"{name} looks like it holds personal data ({', '.join(found)}): not sent (Art. 24(5))"
                )
        return self

    def body(self) -> dict[str, object]:
        """The JSON the API takes: dates as Y-m-d, optional fields left out rather than null."""
        return self.model_dump(mode="json", exclude_none=True, exclude_defaults=False)
