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
from email_validator import EmailNotValidError, validate_email

from komeet_sync.model.domain_names import check_domain
from komeet_sync.model.frames import contains

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
    text = values.astype("str").str.strip()
    present = text.notna().to_numpy()
    empty = present & (text == "").fillna(False).to_numpy(dtype=bool)
    lowered = text.str.lower()

    fast, domain = _vouched(lowered)
    email = lowered.where(fast)
    domain = domain.where(fast)
    error = pd.Series(pd.NA, index=values.index, dtype="str")
    if not present.all():
        error[~present] = "no email address"
    if empty.any():
        error[empty] = "the email address is empty"

    # Everything the fast path cannot vouch for gets email-validator's own verdict.
    slow = present & ~fast & ~empty
    if slow.any():
        verdicts = [_validate_one(address) for address in text[slow]]
        email[slow] = np.array([good for good, _ in verdicts], dtype=object)
        domain[slow] = np.array(
            [good.rpartition("@")[2] if good else None for good, _ in verdicts], dtype=object
        )
        error[slow] = np.array([bad for _, bad in verdicts], dtype=object)
    return pd.DataFrame({"email": email, "domain": domain, "error": error}, index=values.index)


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
    fast, domain = _vouched(text.str.lower())
    if not fast.any():
        return pd.Series(pd.NA, index=values.index, dtype="str")
    local = text.str.replace(r"@[^@]*$", "", regex=True)
    readable = {name: check_domain(name).unicode for name in domain[fast].unique()}
    written = local + "@" + domain.map(readable, na_action="ignore").astype("str")
    return written.where(fast)


def _vouched(lowered: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """Which trimmed, lower-cased addresses email-validator accepts as they are, told
    without it (ASCII dot-atom local parts, each distinct domain checked once), and the
    domain of each (NA where the address is not of that form)."""
    fast = lowered.str.fullmatch(_FAST_EMAIL).fillna(False).to_numpy(dtype=bool)
    if not fast.any():
        return fast, pd.Series(pd.NA, index=lowered.index, dtype="str")
    domain = lowered.str.replace(r"^.*@", "", regex=True)
    # An ASCII domain that email-validator accepts is already in its normal form.
    good = [name for name in domain[fast].unique() if check_domain(name).ascii == name]
    length = lowered.str.len().fillna(0).to_numpy()
    local_length = length - domain.str.len().fillna(0).to_numpy() - 1
    fast = fast & contains(domain, pd.Series(good, dtype="str"))
    fast = fast & (local_length <= _MAX_LOCAL) & (length <= _MAX_ADDRESS)
    return fast, domain


def _validate_one(address: str) -> tuple[str | None, str | None]:
    candidate = unicodedata.normalize("NFC", address)
    try:
        valid = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as exc:
        return None, str(exc)
    return f"{valid.local_part.lower()}@{valid.ascii_domain.lower()}", None
