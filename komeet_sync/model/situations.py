"""The vocabulary of reconciliation: situations and actions (ARCHITECTURE.md, "Situations").

The names follow midPoint's synchronization situations; ``out_of_scope`` and ``inactive``
name the rows that need nothing because nobody is desired and no account is active.
"""

from enum import StrEnum


class Situation(StrEnum):
    JOINER = "joiner"  # desired, no Komeet account: create
    RETURNER = "returner"  # desired, matched account inactive: reactivate
    CHANGED = "changed"  # desired, matched, attributes differ: update
    UNCHANGED = "unchanged"  # desired, matched, equal: nothing
    LEAVER = "leaver"  # active managed account, person not desired or gone: deactivate
    DISPUTED = "disputed"  # several accounts for a person, or people for an account: nothing
    INVALID = "invalid"  # bad or out-of-domain email, missing name: nothing
    UNMANAGED = "unmanaged"  # account the sync did not create or link: never touched
    OUT_OF_SCOPE = "out_of_scope"  # active in the directory, in no selected group, no account
    INACTIVE = "inactive"  # neither desired nor holding an active account: nothing


class Action(StrEnum):
    """What the plan asks of Komeet. There is no delete: leavers are deactivated."""

    CREATE = "create"
    REACTIVATE = "reactivate"
    UPDATE = "update"
    DEACTIVATE = "deactivate"


ACTION_OF: dict[Situation, Action] = {
    Situation.JOINER: Action.CREATE,
    Situation.RETURNER: Action.REACTIVATE,
    Situation.CHANGED: Action.UPDATE,
    Situation.LEAVER: Action.DEACTIVATE,
}
