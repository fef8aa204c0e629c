"""One stored form for every way of writing a domain name, and reasons in a domain's words."""

from __future__ import annotations

import pandas as pd
import pytest

from komeet_sync.model.domain_names import (
    InvalidDomain,
    display_domain,
    normalise_domain,
    unicode_domain,
)
from komeet_sync.model.emails import normalise_email, normalise_emails

BUCHER = "xn--bcher-kva.example"


@pytest.mark.parametrize(
    "written",
    ["Bücher.example", "BÜCHER.EXAMPLE", " bücher.example. ", BUCHER, "XN--BCHER-KVA.Example"],
)
def test_every_form_of_a_name_is_stored_alike(written):
    assert normalise_domain(written) == BUCHER


def test_an_email_domain_is_normalised_by_the_same_rule():
    assert normalise_email("Ana@BÜCHER.example").partition("@")[2] == BUCHER
    frame = normalise_emails(pd.Series(["ana@Bücher.example", f"ben@{BUCHER}"], dtype="str"))
    assert list(frame["domain"]) == [BUCHER, BUCHER]


def test_the_unicode_form_is_shown_beside_the_stored_one():
    assert unicode_domain(BUCHER) == "bücher.example"
    assert display_domain(BUCHER) == f"{BUCHER} (bücher.example)"
    assert display_domain("acme.com") == "acme.com"
    assert display_domain("not a domain") == "not a domain"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "it is empty"),
        ("jane@acme.com", "give the domain alone"),
        ("acme..com", "two dots in a row"),
        ("acme", "it has no dot"),
        ("ac me.com", "characters no domain name may have: SPACE"),
        ("-acme.com", "it begins with a hyphen"),
        ("acme.local", "special-use name"),
        ("xn--zz.com", "not a valid internationalised name"),
        ("a" * 64 + ".com", "longer than 63 characters"),
    ],
)
def test_a_value_that_is_no_domain_is_refused_in_a_domains_words(value, reason):
    with pytest.raises(InvalidDomain) as refused:
        normalise_domain(value)
    assert reason in refused.value.reason
    message = str(refused.value)
    assert message.startswith(f"{value!r} is not a valid domain name: ")
    assert "@-sign" not in message and "email address" not in message
