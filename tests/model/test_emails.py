"""Email normalisation: trim, NFC, lower-case, IDNA; syntax checked by email-validator."""

from __future__ import annotations

import pandas as pd
import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import EmailStr, TypeAdapter

from komeet_sync.model.emails import (
    InvalidEmail,
    addresses_as_written,
    normalise_email,
    normalise_emails,
)
from tests.support.scale import at_scale

EMAIL_STR = TypeAdapter(EmailStr)


@pytest.mark.parametrize(
    ("given_address", "normal"),
    [
        ("  Jane.Doe@ACME.com ", "jane.doe@acme.com"),
        ("jane@bücher.example", "jane@xn--bcher-kva.example"),
        ("Ame\u0301lie@acme.com", "amélie@acme.com"),  # NFD in, NFC out
        ("o'brien+news@acme.com", "o'brien+news@acme.com"),
    ],
)
def test_normalises(given_address, normal):
    assert normalise_email(given_address) == normal


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("jane..doe@acme.com", "two periods in a row"),
        ("jane@acme", "not valid"),
        ("jane", "must have an @-sign"),
        ("jane@localhost", "not valid"),
        ("", "empty"),
        ("a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 63 + ".com", "too long"),
    ],
)
def test_refuses_with_the_reason(bad, reason):
    with pytest.raises(InvalidEmail) as caught:
        normalise_email(bad)
    assert reason in str(caught.value)


ATOM = st.text(alphabet="abcXYZ019.-_+'é@ ", min_size=0, max_size=12)


DOMAINS = [
    "acme.com",
    "ACME.io",
    "a-b.example",
    "-bad.com",
    "acme..com",
    "x.test",
    "xn--bcher-kva.example",
]


@settings(max_examples=at_scale(100, 300), deadline=None)
@given(
    st.lists(st.builds(lambda a, b: f"{a}@{b}", ATOM, st.sampled_from(DOMAINS)) | ATOM, max_size=8)
)
def test_the_fast_path_agrees_with_email_validator(addresses):
    """Every address gets email-validator's own verdict, whichever path it took."""
    result = normalise_emails(pd.Series(addresses, dtype=object))
    for address, email in zip(addresses, result["email"], strict=True):
        try:
            valid = validate_email(address.strip(), check_deliverability=False)
            expected = f"{valid.local_part.lower()}@{valid.ascii_domain.lower()}"
        except EmailNotValidError:
            expected = None
        assert (None if pd.isna(email) else email) == expected, address


@settings(max_examples=at_scale(100, 300), deadline=None)
@given(st.builds(lambda a, b: f"{a}@{b}", ATOM, st.sampled_from(DOMAINS)) | ATOM)
def test_one_address_is_normalised_as_a_column_is(address):
    """``normalise_email`` (one address, per SCIM request) and ``normalise_emails`` (a
    column, per snapshot) give the same address or the same reason."""
    column = normalise_emails(pd.Series([address], dtype=object)).iloc[0]
    try:
        single = normalise_email(address)
    except InvalidEmail as refused:
        assert pd.isna(column["email"]) and refused.reason == column["error"], address
    else:
        assert single == column["email"], address


@settings(max_examples=at_scale(100, 300), deadline=None)
@given(
    st.lists(
        st.builds(lambda a, b: f"{a}@{b}", ATOM, st.sampled_from(DOMAINS))
        | ATOM
        | st.sampled_from(["Jane <jane@acme.com>", "\u212aelvin@acme.com", "jane@ACME.COM"]),
        max_size=8,
    )
)
def test_addresses_as_written_are_what_pydantic_holds(addresses):
    """An address the fast path vouches for is the one pydantic's EmailStr (hence a SCIM
    ``emails[].value``) holds; it vouches for no address that EmailStr refuses."""
    written = addresses_as_written(pd.Series(addresses, dtype=object))
    for address, value in zip(addresses, written, strict=True):
        if pd.isna(value):
            continue
        assert EMAIL_STR.validate_python(address) == value, address
