"""The plan and its id (ARCHITECTURE.md, "Guards": an approval names exactly one plan): the id
is a digest of the domain and the actions, so the same state always gives the same id,
whatever the order of the rows, and one action more or less gives another."""

from __future__ import annotations

import pandas as pd

from komeet_sync.engine.planning import build_plan, plan_id
from komeet_sync.engine.reconcile import reconcile
from komeet_sync.model.plan import PLAN_COLUMNS
from tests.support.frames import account, config, directory, komeet, person


def actions(*rows: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame([{column: row.get(column) for column in PLAN_COLUMNS} for row in rows])


CREATE = {
    "action": "create", "email": "ada@acme.com", "user_name": "ada@acme.com",
    "external_id": "g1", "given_name": "Ada", "family_name": "Lovelace", "reason": "joiner",
}  # fmt: skip
DEACTIVATE = {
    "action": "deactivate", "email": "bob@acme.com", "komeet_id": "k2",
    "user_name": "bob@acme.com", "external_id": "g2", "reason": "leaver",
}  # fmt: skip


def test_the_same_actions_in_any_order_give_the_same_plan():
    one = build_plan("acme.com", actions(CREATE, DEACTIVATE), ())
    other = build_plan("acme.com", actions(DEACTIVATE, CREATE), ())

    assert one.plan_id == other.plan_id
    assert one.plan_id.startswith("plan_") and len(one.plan_id) == len("plan_") + 20
    pd.testing.assert_frame_equal(one.actions, other.actions)
    assert list(one.actions["action"]) == ["create", "deactivate"]


def test_the_reason_is_explanation_only_and_not_part_of_the_id():
    worded = actions(CREATE | {"reason": "said otherwise"}, DEACTIVATE)

    assert plan_id("acme.com", worded) == plan_id("acme.com", actions(CREATE, DEACTIVATE))


def test_another_action_another_domain_or_another_value_gives_another_id():
    base = plan_id("acme.com", actions(CREATE, DEACTIVATE))

    assert plan_id("acme.com", actions(CREATE)) != base
    assert plan_id("globex.com", actions(CREATE, DEACTIVATE)) != base
    assert plan_id("acme.com", actions(CREATE | {"family_name": "King"}, DEACTIVATE)) != base


def test_the_same_state_reconciled_twice_gives_the_same_plan_id():
    def plan():
        return reconcile(
            directory(person("g1", "ada@acme.com"), person("g3", "cy@acme.com")),
            komeet(account("k2", "bob@acme.com", external_id="g2")),
            config(max_deactivation_share=1.0),
        ).plan

    assert plan().plan_id == plan().plan_id
    assert plan().counts() == {"create": 2, "deactivate": 1}
