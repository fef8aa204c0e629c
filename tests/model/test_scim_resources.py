"""SCIM User resources read column by column give what scim2-models gives one by one: the
same frames, and the same read error for each bad resource."""

from __future__ import annotations

import pandas as pd
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from komeet_sync.model.frames import Source
from komeet_sync.model.scim_resources import (
    ENTERPRISE_SCHEMA,
    USER_SCHEMA,
    _FastUsers,
    read_users,
    read_users_one_by_one,
)
from tests.support.scale import at_scale

TEXT = st.sampled_from(["Jane", "", " padded ", "Ünïcode", "O'Brien"]) | st.text(max_size=6)
ODD = st.sampled_from([None, 7, 1.5, True, False, [], {}, ["x"], {"a": 1}])
ADDRESS = st.sampled_from(
    [
        "jane.doe@acme.com",
        "Jane.Doe@ACME.COM",
        "o'brien+news@Acme.IO",
        "jane@xn--bcher-kva.example",
        "jane@bücher.example",
        "Amélie@acme.com",
        " jane@acme.com ",
        "Jane Doe <jane@acme.com>",
        "jane..doe@acme.com",
        "jane@acme",
        "jane@localhost",
        "jane@acme.test",
        "jane",
        "",
        "a" * 65 + "@acme.com",
        "\u212aelvin@acme.com",  # the Kelvin sign lower-cases to an ASCII k
    ]
)
TIME = st.sampled_from(
    [
        "2024-01-02T03:04:05Z",
        "2024-01-02T03:04:05.000Z",
        "2024-01-02T03:04:05.5+02:00",
        "2024-01-02T03:04:05.123456-00:00",
        "2024-01-02T03:04:05-05:30",
        "2024-01-02T03:04:05.1234567Z",
        "2024-01-02 03:04:05",
        "2024-01-02T03:04:05",
        "2024-01-02",
        "2024-13-02T03:04:05Z",
        "2024-02-30T03:04:05Z",
        "1700000000",
        "yesterday",
    ]
)
GOOD_TIME = st.sampled_from(
    ["2024-01-02T03:04:05Z", "2024-01-02T03:04:05.250+02:00", "2024-01-02T03:04:05.000Z"]
)


def spelled(*names: str) -> st.SearchStrategy[str]:
    """An attribute name in its usual spelling, in capitals, or in lower case (RFC 7643
    §2.1: names are case-insensitive)."""
    return st.sampled_from(names).flatmap(
        lambda name: st.sampled_from([name, name.upper(), name.lower()])
    )


def complex_attribute(fields: dict[str, st.SearchStrategy]) -> st.SearchStrategy:
    """An object of some of ``fields``, sometimes with an attribute the model does not
    know, or something else than an object."""
    entries = st.lists(
        st.one_of(
            *[st.tuples(spelled(name), value) for name, value in fields.items()],
            st.tuples(st.just("unknownSubAttribute"), TEXT),
        ),
        max_size=len(fields) + 1,
    ).map(dict)
    return st.one_of(entries, entries, entries, ODD)


EMAIL = complex_attribute(
    {
        "value": ADDRESS | ODD,
        "type": st.sampled_from(["work", "home", "WORK", "other", ""]) | ODD,
        "primary": st.booleans() | ODD | st.just("true"),
        "display": TEXT | ODD,
    }
)
NAME = complex_attribute(
    {"givenName": TEXT | ODD, "familyName": TEXT | ODD, "formatted": TEXT, "middleName": ODD}
)
META = complex_attribute(
    {
        "created": TIME | ODD,
        "lastModified": TIME | ODD,
        "resourceType": st.just("User") | ODD,
        "location": TEXT,
        "version": TEXT | ODD,
    }
)
ENTERPRISE = complex_attribute(
    {
        "employeeNumber": TEXT | ODD,
        "department": TEXT | ODD,
        "costCenter": TEXT,
        "manager": st.just({"value": "m1"}) | ODD,
    }
)
ATTRIBUTES = {
    ("id",): st.sampled_from(["u1", "u2", "", "bulkId-1"]) | ODD,
    ("userName", "user_name"): ADDRESS | TEXT | ODD,
    ("externalId",): TEXT | ODD,
    ("active",): st.booleans() | ODD | st.sampled_from(["true", "False", "yes", 0, 1]),
    ("displayName", "title", "nickName"): TEXT | ODD,
    ("name",): NAME,
    ("emails",): st.lists(EMAIL, max_size=3) | ODD,
    ("meta",): META,
    ("schemas",): st.sampled_from(
        [
            [USER_SCHEMA],
            [USER_SCHEMA, ENTERPRISE_SCHEMA],
            [ENTERPRISE_SCHEMA, USER_SCHEMA],
            [],
            ["urn:example"],
            [USER_SCHEMA, 5],
        ]
    )
    | ODD,
    (ENTERPRISE_SCHEMA, "enterpriseUser"): ENTERPRISE,
    ("phoneNumbers",): st.just([{"value": "+33 1 23 45 67 89"}]),
    ("x-okta-attribute", f"{USER_SCHEMA}:userName", "urn:example:extension"): TEXT | ODD,
}
RECORD = st.lists(
    st.one_of(*[st.tuples(spelled(*names), value) for names, value in ATTRIBUTES.items()]),
    max_size=12,
).map(dict)
# Records as most sources send them: the attributes the fast path reads, well-formed.
WELL_FORMED = st.tuples(
    st.fixed_dictionaries(
        {
            "id": st.sampled_from(["u1", "u2", "u3"]),
            "userName": st.sampled_from(["jane@acme.com", "Joe.Bloggs@ACME.com"]),
            "active": st.booleans(),
            "name": st.fixed_dictionaries({"givenName": TEXT, "familyName": TEXT}),
            "emails": st.lists(
                st.fixed_dictionaries(
                    {"value": st.sampled_from(["jane@acme.com", "j@xn--bcher-kva.example"])},
                    optional={"type": st.just("work"), "primary": st.booleans()},
                ),
                max_size=2,
            ),
            "meta": st.fixed_dictionaries({"created": GOOD_TIME, "lastModified": GOOD_TIME}),
        },
        optional={
            "schemas": st.just([USER_SCHEMA, ENTERPRISE_SCHEMA]),
            "externalId": TEXT,
            "x-custom": TEXT,
            ENTERPRISE_SCHEMA: st.fixed_dictionaries({}, optional={"employeeNumber": TEXT}),
        },
    ),
    st.sampled_from([str, str.upper, str.lower]),
).map(lambda pair: {pair[1](k) if k != "schemas" else k: v for k, v in pair[0].items()})


def assert_same_reading(records: list) -> None:
    fast = read_users(records, Source.SCIM)
    reference = read_users_one_by_one(records, Source.SCIM)
    pd.testing.assert_frame_equal(fast.users, reference.users)
    pd.testing.assert_frame_equal(fast.emails, reference.emails)
    pd.testing.assert_frame_equal(fast.errors, reference.errors)


@settings(
    max_examples=at_scale(80, 250), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(st.lists(RECORD | WELL_FORMED | ODD, max_size=12))
@example([{"id": "u1", "userName": "a@acme.com", "name": {"givenName": "A", "x": 1}}])
@example([{"id": "u1", "USERNAME": "a@acme.com", "username": "b@acme.com"}])
@example([{"id": "u1", "userName": "a@acme.com", "Schemas": [USER_SCHEMA]}])
@example([{"id": "u1", "userName": "a@acme.com", "emails": [None]}])
def test_the_fast_path_reads_what_scim2_models_reads(records):
    """Valid and invalid resources, names in any case, extensions present or absent:
    the same users, emails and errors, in the same order."""
    assert_same_reading(records)


@settings(max_examples=50, deadline=None)
@given(st.lists(WELL_FORMED, min_size=1, max_size=20))
def test_well_formed_resources_take_the_fast_path(records):
    """Well-formed resources are read without scim2-models (or the fast path would be
    no faster), and read as scim2-models reads them."""
    assert_same_reading(records)
    assert _FastUsers(records).unread() == []
