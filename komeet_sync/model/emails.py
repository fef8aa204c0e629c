"""Normalising and validating email addresses (ARCHITECTURE.md, "Identity and matching").

Normalising an email: trim, Unicode NFC, lower-case, IDNA for the domain (the rule of every
domain name, ``model.domain_names``); syntax validated with ``email-validator`` (no DNS). A
directory of a million addresses goes through a vectorised fast path: ASCII dot-atom local
parts are checked with one regular expression, and each distinct domain once with
``email-validator``. Every other address (quoted local
parts, Unicode, anything odd) goes through ``email-validator`` one by one, so both paths
accept and refuse the same addresses.
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from email_validator import EmailNotValidError, validate_email

from komeet_sync.model.domain_names import check_domain
from komeet_sync.model.frames import flags, from_arrow, to_arrow

# RFC 5322 §3.2.3 atext, the characters email-validator allows unquoted in a local part.
_ATEXT = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]"
_FAST_EMAIL = rf"{_ATEXT}+(?:\.{_ATEXT}+)*@[a-z0-9.-]+"
# RFC 5321 §4.5.3.1.1: at most 64 octets in the local part; email-validator caps the whole
# address at 254 characters (RFC 3696 errata 1690).
_FAST_EMAIL_RE = re.compile(_FAST_EMAIL)
_MAX_LOCAL = 64
_MAX_ADDRESS = 254


class InvalidEmail(ValueError):
    """An address that is not a valid email, with the reason from email-validator."""

    def __init__(self, value: str, reason: str) -> None:
        super().__init__(f"{value!r} is not a valid email address: {reason}")
        self.value = value
        self.reason = reason


def normalise_email(value: str) -> str:
    """One address, normalised as ``normalise_emails`` does a column (without building one:
    the SCIM endpoint checks an address per request); raises InvalidEmail with the reason."""
    if value is None:
        raise InvalidEmail(value, "no email address")
    text = str(value).strip()
    if not text:
        raise InvalidEmail(value, "the email address is empty")
    lowered = text.lower()
    if _FAST_EMAIL_RE.fullmatch(lowered):
        local, _, domain = lowered.rpartition("@")
        if (
            check_domain(domain).ascii == domain
            and len(local) <= _MAX_LOCAL
            and len(lowered) <= _MAX_ADDRESS
        ):
            return lowered
    email, error = _validate_one(text)
    if email is None:
        raise InvalidEmail(value, str(error))
    return email


def email_domain(emails: pd.Series) -> pd.Series:
    """The domain part of normalised addresses (NA where the address is NA)."""
    domain = pd.Series(pd.NA, index=emails.index, dtype="str")
    present = emails.notna()
    if present.any():
        domain[present] = emails[present].astype("str").str.replace(r"^.*@", "", regex=True)
    return domain


def normalise_emails(values: pd.Series) -> pd.DataFrame:
    """Normalise a column of addresses.

    Returns a frame on the same index with ``email`` (normalised; NA when invalid or
    missing), its ``domain``, and ``error`` (NA when valid; the reason in words otherwise).
    """
    text = pc.utf8_trim_whitespace(to_arrow(values)).combine_chunks()
    present = flags(text.is_valid())
    empty = flags(pc.equal(text, ""))
    # Lower-casing ASCII needs no Unicode tables: a tenth of the time, the same result.
    ascii_only = pc.all(pc.string_is_ascii(text)).as_py() is not False
    lowered = pc.ascii_lower(text) if ascii_only else pc.utf8_lower(text)

    fast, domain_code, known = _vouched(lowered)
    email = lowered if fast.all() else pc.if_else(fast, lowered, pa.scalar(None, pa.large_string()))
    domain = known.take(pa.array(domain_code, mask=~fast))
    error = pa.array(["no email address", "the email address is empty"], pa.large_string()).take(
        pa.array(np.where(empty, 1, 0), mask=present & ~empty)
    )

    # Everything the fast path cannot vouch for gets email-validator's own verdict.
    slow = present & ~fast & ~empty
    if slow.any():
        verdicts = [_validate_one(address) for address in text.filter(slow).to_pylist()]
        slow_mask = pa.array(slow)

        def replaced(column: pa.Array, new: list[str | None]) -> pa.Array:
            return pc.replace_with_mask(column, slow_mask, pa.array(new, pa.large_string()))

        email = replaced(email, [good for good, _ in verdicts])
        domain = replaced(
            domain, [good.rpartition("@")[2] if good else None for good, _ in verdicts]
        )
        error = replaced(error, [bad for _, bad in verdicts])
    return pd.DataFrame(
        {"email": from_arrow(email), "domain": from_arrow(domain), "error": from_arrow(error)},
        index=values.index,
    )


def addresses_as_written(values: pd.Series) -> pd.Series:
    """The addresses of a column in the form email-validator gives as ``normalized`` (what
    pydantic's ``EmailStr``, hence a SCIM ``emails[].value``, holds): the local part as
    written, the domain in its Unicode form, lower-case.

    Only for what the fast path vouches for: ASCII text, nothing around the address, a
    dot-atom local part and a valid domain. NA for every other value, valid or not: only
    email-validator itself can tell those (``values`` of other types are NA too).
    """
    text = pd.Series(
        [value if type(value) is str and value.isascii() else None for value in values],
        index=values.index,
        dtype="str",
    )
    fast, domain_code, known = _vouched(pc.ascii_lower(to_arrow(text)).combine_chunks())
    if not fast.any():
        return pd.Series(pd.NA, index=values.index, dtype="str")
    readable = pa.array(
        [check_domain(name).unicode for name in known.to_pylist()], pa.large_string()
    )
    domain = pd.Series(
        from_arrow(readable.take(pa.array(domain_code, mask=~fast))), index=values.index
    )
    local = text.str.replace(r"@[^@]*$", "", regex=True)
    return (local + "@" + domain).where(fast)


def _vouched(lowered: pa.Array) -> tuple[np.ndarray, np.ndarray, pa.Array]:
    """Which trimmed, lower-cased addresses email-validator accepts as they are, told
    without it (ASCII dot-atom local parts, each distinct domain checked once): a mask, each
    address's domain as a code (-1 where the address is not of that form) and the domains
    those codes stand for."""
    # A fast-path address holds one @ (neither atext nor a domain has one): its domain is
    # what follows it. Each distinct domain is checked once.
    matched = flags(pc.match_substring_regex(lowered, f"^({_FAST_EMAIL})$"))
    at = np.flatnonzero(matched)
    candidates = lowered if len(at) == len(lowered) else lowered.take(at)
    domains = pc.list_element(
        pc.split_pattern(candidates, "@", max_splits=1), 1
    ).dictionary_encode()
    known = domains.dictionary
    # An ASCII domain that email-validator accepts is already in its normal form.
    good = np.array([check_domain(name).ascii == name for name in known.to_pylist()], dtype=bool)
    code = domains.indices.to_numpy(zero_copy_only=False)
    length = pc.binary_length(candidates).to_numpy(zero_copy_only=False)
    local_length = length - pc.binary_length(known).to_numpy(zero_copy_only=False)[code] - 1
    fast_path = good[code] & (local_length <= _MAX_LOCAL) & (length <= _MAX_ADDRESS)
    domain_code = np.full(len(lowered), -1, dtype=np.int64)
    domain_code[at[fast_path]] = code[fast_path]
    return domain_code >= 0, domain_code, known


def _validate_one(address: str) -> tuple[str | None, str | None]:
    candidate = unicodedata.normalize("NFC", address)
    try:
        valid = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as exc:
        return None, str(exc)
    return f"{valid.local_part.lower()}@{valid.ascii_domain.lower()}", None
