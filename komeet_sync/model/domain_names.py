"""Domain names: one stored form, however a name is written (ARCHITECTURE.md, "Configuration:
one per domain"; IDNA 2008, RFC 5890-5893, with the UTS #46 mapping).

A domain name is stored, compared, and put in SCIM URLs and result folders in one form:
lower-case ASCII, each internationalised label as its A-label (``Bücher.example`` is
``xn--bcher-kva.example``). ``normalise_domain`` gives that form from any way of writing the
name (Unicode or punycode, any case, with a final dot), and it is the one rule: arguments of
the CLI, alias domains, the SCIM endpoint's URL, and the domain part of every email address
(``model.emails``) go through ``check_domain``.

A valid domain is one that email addresses can be in, as email-validator checks an
address's domain (no DNS): IDNA 2008 through the ``idna`` package, with UTS #46 mapping
(case folding, NFC, full-width dots), a dot and a top-level domain, and no special-use name
(RFC 6761: ``.local``, ``.test``, ``.invalid``...). A configured domain whose users could
have no valid address would sync nobody.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from email_validator import EmailNotValidError, validate_email

WHAT_A_DOMAIN_IS = (
    "a domain name is letters, digits and hyphens joined by dots, like acme.com or bücher.example"
)

# email-validator's reasons about an address's domain, in a domain's words: the first
# phrase found in its message gives ours.
_REASONS = (
    ("two periods in a row", "it has two dots in a row"),
    ("period immediately after the @-sign", "it begins with a dot"),
    ("end with a period", "it ends with more than one dot"),
    ("hyphen immediately after the @-sign", "it begins with a hyphen"),
    ("end with a hyphen", "it ends with a hyphen"),
    ("period and a hyphen next to each other", "a part between dots begins or ends with a hyphen"),
    (
        "two letters followed by two dashes",
        "a part between dots has '--' in third and fourth place, which only punycode "
        "(xn--) may have",
    ),
    ("should have a period", "it has no dot: give the whole name, with its top-level domain"),
    (
        "valid top-level domain",
        "its top-level domain (after the last dot) does not end in a letter",
    ),
    (
        "special-use or reserved name",
        "it is a special-use name that no email is sent to (RFC 6761: .local, .test, "
        ".invalid, .localhost, .onion, .arpa)",
    ),
    ("so many characters", "a part between dots is longer than 63 characters"),
    ("too long", "it is longer than 253 characters"),
    ("not valid IDNA", "it is not a valid internationalised name (IDNA 2008)"),
    ("is invalid (", "it is not a valid internationalised name (IDNA 2008)"),
)


class InvalidDomain(ValueError):
    """A value that is not a domain name, with the reason in words."""

    def __init__(self, value: object, reason: str) -> None:
        super().__init__(f"{value!r} is not a valid domain name: {reason}; {WHAT_A_DOMAIN_IS}")
        self.value = value
        self.reason = reason


@dataclass(frozen=True)
class DomainCheck:
    """A name as checked: its stored (ASCII) and Unicode forms, or why it is no domain."""

    ascii: str | None
    unicode: str | None
    problem: str | None


def normalise_domain(value: object) -> str:
    """The stored form of a domain name, however written; raises InvalidDomain."""
    text = str(value).strip() if value is not None else ""
    if not text:
        raise InvalidDomain(value, "it is empty")
    if "@" in text:
        raise InvalidDomain(value, "it holds an @: give the domain alone, without a mailbox")
    # A fully qualified name's final dot (acme.com.) names the same domain.
    checked = check_domain(unicodedata.normalize("NFC", text).lower().removesuffix("."))
    if checked.ascii is None:
        raise InvalidDomain(value, _in_domain_words(checked.problem or ""))
    return checked.ascii


def domain_key(value: str) -> str:
    """What a lookup by domain compares: the stored form of the name, or, for a value that
    is no domain name, the value trimmed and lower-cased (which finds nothing)."""
    try:
        return normalise_domain(value)
    except InvalidDomain:
        return str(value).strip().lower()


def unicode_domain(name: str) -> str:
    """A stored domain name as people read it: ``xn--bcher-kva.example`` is
    ``bücher.example``; an ASCII name, or one that is no domain, is itself."""
    checked = check_domain(name)
    return checked.unicode or name


def display_domain(name: str) -> str:
    """A stored domain name with its Unicode form beside it when that differs:
    ``xn--bcher-kva.example (bücher.example)``."""
    readable = unicode_domain(name)
    return name if readable == name else f"{name} ({readable})"


@lru_cache(maxsize=4096)
def check_domain(name: str) -> DomainCheck:
    """Whether ``name`` is a domain of email addresses, as email-validator checks the part
    after an address's @ (see the module's docstring); its forms if it is."""
    try:
        valid = validate_email(f"postmaster@{name}", check_deliverability=False)
    except EmailNotValidError as exc:
        return DomainCheck(None, None, str(exc))
    return DomainCheck(valid.ascii_domain.lower(), valid.domain, None)


def _in_domain_words(reason: str) -> str:
    for phrase, words in _REASONS:
        if phrase in reason:
            return words
    if "invalid characters" in reason:
        found = reason.partition(":")[2].strip().rstrip(".")
        return (
            f"it has characters no domain name may have: {found}"
            if found
            else ("it has characters no domain name may have")
        )
    if "unsafe characters" in reason:
        return "it has invisible or unsafe characters"
    return "email addresses cannot be in it"
