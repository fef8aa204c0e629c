"""A domain configuration: how one customer email domain is synced (ARCHITECTURE.md,
"Configuration: one per domain").

Pure: it validates and normalises what an admin typed; storing it is ``domain_store``'s job.
A configuration is made by ``DomainConfig.create`` and changed by ``DomainConfig.changed``,
which makes the changed one by ``create`` again: an edit is refused exactly as an addition is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum, StrEnum

from komeet_sync.model.domain_names import WHAT_A_DOMAIN_IS, InvalidDomain, normalise_domain
from komeet_sync.model.emails import InvalidEmail, normalise_email

DEFAULT_MAX_DEACTIVATIONS = 500
DEFAULT_MAX_DEACTIVATION_SHARE = 0.2
# The highest SCIM rate limit a domain may be given, in requests a second: far above what
# an IdP sends (Entra ID is asked to stay under 25), low enough to still be a limit.
MAX_SCIM_RATE_LIMIT = 10_000


class SourceKind(StrEnum):
    """How a domain's directory reaches us."""

    GOOGLE = "google"  # pulled through the Admin SDK Directory API
    SCIM = "scim"  # pushed by Entra ID or Okta to our SCIM endpoint


class InvalidConfiguration(ValueError):
    """A domain configuration that cannot be accepted; the message says what to change."""


class Default(Enum):
    """A setting given back to its default (``domains set --scim-rate-limit default``)."""

    DEFAULT = "default"


@dataclass(frozen=True)
class ListEdit:
    """A change to one list of a configuration: ``replace`` it whole (``()`` empties it), or
    ``add`` and ``remove`` items; an edit with none of them keeps the list."""

    replace: tuple[str, ...] | None = None
    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return self.replace is None and not self.add and not self.remove


@dataclass(frozen=True)
class DomainChange:
    """What changes in a domain's configuration (``domains set``): a list edit, or a value
    given; a value left None keeps the current one. The domain, its source, whether it is
    enabled and its SCIM secret are not changed here."""

    groups: ListEdit = field(default_factory=ListEdit)
    alias_domains: ListEdit = field(default_factory=ListEdit)
    protected: ListEdit = field(default_factory=ListEdit)
    admin_email: str | None = None
    max_deactivations: int | None = None
    max_deactivation_share: float | None = None
    scim_rate_limit: int | Default | None = None

    @property
    def empty(self) -> bool:
        return (
            self.groups.empty
            and self.alias_domains.empty
            and self.protected.empty
            and self.admin_email is None
            and self.max_deactivations is None
            and self.max_deactivation_share is None
            and self.scim_rate_limit is None
        )


@dataclass(frozen=True)
class Quarantine:
    """A domain in quarantine: nothing is written to Komeet for it, from any path, until an
    operator releases it (ARCHITECTURE.md, "Guards"); its syncs still read, plan and write
    their reports. ``engine.quarantine`` decides when a domain is quarantined."""

    domain: str
    since: datetime
    reason: str  # in words: "12 of 20 actions failed (60%) applying plan_..."

    @property
    def release(self) -> str:
        """The command that lifts it."""
        return f"komeet-sync domains release {self.domain}"

    def __str__(self) -> str:
        return (
            f"{self.domain} is quarantined since {self.since:%Y-%m-%d %H:%M} UTC ({self.reason}); "
            f"`{self.release}` lifts it"
        )

    def as_dict(self) -> dict[str, object]:
        return {"since": self.since.isoformat(), "reason": self.reason, "release": self.release}


@dataclass(frozen=True)
class DomainConfig:
    """One domain's sync settings, already validated and normalised.

    ``groups`` are group emails for Google and group display names for SCIM; an empty tuple
    for SCIM means every active user the IdP pushes is in scope. ``scim_rate_limit`` is the
    requests a second a SCIM domain's IdP may send (``sources.scim.rate_limit``); None: the
    default. ``quarantine`` is not a setting but the domain's state (``Quarantine``): set and
    lifted by the store, kept by every change of the settings, and not in ``as_dict``.
    """

    domain: str
    source: SourceKind
    groups: tuple[str, ...] = ()
    alias_domains: tuple[str, ...] = ()
    protected: tuple[str, ...] = ()
    admin_email: str | None = None
    enabled: bool = True
    max_deactivations: int = DEFAULT_MAX_DEACTIVATIONS
    max_deactivation_share: float = DEFAULT_MAX_DEACTIVATION_SHARE
    quarantine: Quarantine | None = None
    scim_rate_limit: int | None = None

    @property
    def domains(self) -> tuple[str, ...]:
        """The domain and its alias domains: a Komeet account is this domain's when its
        userName is in one of them."""
        return (self.domain, *self.alias_domains)

    def as_dict(self) -> dict[str, object]:
        """The configuration as JSON values (``domains show --json``); a SCIM domain's rate
        limit is null when it is the default."""
        shown: dict[str, object] = {
            "domain": self.domain,
            "source": self.source.value,
            "groups": list(self.groups),
            "alias_domains": list(self.alias_domains),
            "protected": list(self.protected),
            "admin_email": self.admin_email,
            "enabled": self.enabled,
            "max_deactivations": self.max_deactivations,
            "max_deactivation_share": self.max_deactivation_share,
        }
        if self.source is SourceKind.SCIM:
            shown["scim_rate_limit"] = self.scim_rate_limit
        return shown

    def differences(self, other: DomainConfig) -> dict[str, tuple[object, object]]:
        """What differs from this configuration to ``other``: (before, after) by setting."""
        before, after = self.as_dict(), other.as_dict()
        return {key: (before[key], after[key]) for key in before if before[key] != after[key]}

    def changed(self, change: DomainChange) -> DomainConfig:
        """This configuration with ``change`` made, checked as ``create`` checks a new one.

        Removing an item that is not in a list is refused, naming the items there are; items
        compare as they are matched (group emails and addresses normalised, SCIM group names
        with spaces collapsed and case folded). The quarantine stays as it is.
        """
        if change.scim_rate_limit is not None and self.source is not SourceKind.SCIM:
            raise InvalidConfiguration(_rate_limit_is_scim(self.domain))
        rate_limit = change.scim_rate_limit
        if rate_limit is None:
            rate_limit = self.scim_rate_limit
        elif rate_limit is Default.DEFAULT:
            rate_limit = None
        changed = DomainConfig.create(
            self.domain,
            self.source,
            groups=self._edited(change.groups, "groups", self.groups, self._group_key),
            alias_domains=self._edited(
                change.alias_domains,
                "alias_domains",
                self.alias_domains,
                lambda name: _domain(name, "alias domain"),
            ),
            protected=self._edited(
                change.protected,
                "protected",
                self.protected,
                lambda email: _email(email, "protected email"),
            ),
            admin_email=(
                change.admin_email if change.admin_email is not None else self.admin_email
            ),
            enabled=self.enabled,
            max_deactivations=(
                self.max_deactivations
                if change.max_deactivations is None
                else change.max_deactivations
            ),
            max_deactivation_share=(
                self.max_deactivation_share
                if change.max_deactivation_share is None
                else change.max_deactivation_share
            ),
            scim_rate_limit=rate_limit,
        )
        return dataclasses.replace(changed, quarantine=self.quarantine)

    def _edited(
        self,
        edit: ListEdit,
        name: str,
        current: tuple[str, ...],
        key: Callable[[str], str],
    ) -> tuple[str, ...]:
        option, what = _LIST_OPTIONS[name]
        if edit.replace is not None and (edit.add or edit.remove):
            raise InvalidConfiguration(
                f"give either {option} (the whole list) or --add-{option[2:]} and "
                f"--remove-{option[2:]} (changes to it), not both"
            )
        items = list(current if edit.replace is None else edit.replace)
        keys = [key(item) for item in items]
        for removed in edit.remove:
            wanted = key(removed)
            if wanted not in keys:
                there = ", ".join(repr(item) for item in items) if items else "none"
                raise InvalidConfiguration(
                    f"{removed!r} is not among the {what} of {self.domain}, so it cannot be "
                    f"removed; its {what}: {there}"
                )
            index = keys.index(wanted)
            del items[index], keys[index]
        return (*items, *edit.add)

    def _group_key(self, group: str) -> str:
        if self.source is SourceKind.GOOGLE:
            return _email(group, "group email")
        return fold(_group_name(group))

    @classmethod
    def create(
        cls,
        domain: str,
        source: str,
        *,
        groups: list[str] | tuple[str, ...] = (),
        alias_domains: list[str] | tuple[str, ...] = (),
        protected: list[str] | tuple[str, ...] = (),
        admin_email: str | None = None,
        enabled: bool = True,
        max_deactivations: int = DEFAULT_MAX_DEACTIVATIONS,
        max_deactivation_share: float = DEFAULT_MAX_DEACTIVATION_SHARE,
        scim_rate_limit: int | None = None,
        require_admin: bool = True,
    ) -> DomainConfig:
        """Validate and normalise what an admin gave; raise InvalidConfiguration if wrong.

        ``require_admin=False`` accepts a Google domain without its delegated admin: the
        offline audit reads exported files and never calls Google.
        """
        try:
            kind = SourceKind(str(source).strip().lower())
        except ValueError:
            raise InvalidConfiguration(
                f"unknown source {source!r}: use 'google' (Admin SDK) or 'scim' (Entra ID, Okta)"
            ) from None
        name = _domain(domain, "domain")
        aliases = _unique(_domain(alias, "alias domain") for alias in alias_domains)
        if name in aliases:
            raise InvalidConfiguration(
                f"alias domain {name!r} is the domain itself; give only its other domains"
            )
        if kind is SourceKind.GOOGLE:
            if not admin_email and require_admin:
                raise InvalidConfiguration(
                    f"a Google domain needs --admin-email: the super admin of {name} whose "
                    "domain-wide delegation Komeet's service account uses"
                )
            if not groups:
                raise InvalidConfiguration(
                    f"a Google domain needs at least one --group: the email of a group whose "
                    f"members get Komeet accounts (for example all@{name})"
                )
            selected = _unique(_email(group, "group email") for group in groups)
            admin = _email(admin_email, "admin email") if admin_email else None
        else:
            # Display names are matched with case folded: two spellings are one group.
            selected = _unique((_group_name(group) for group in groups), key=fold)
            admin = None
            if admin_email:
                raise InvalidConfiguration(
                    "--admin-email is for Google domains; a SCIM domain authenticates with "
                    "its own secret"
                )
        if max_deactivations < 0:
            raise InvalidConfiguration(
                f"--max-deactivations {max_deactivations} is negative; give 0 or more"
            )
        if not 0.0 <= max_deactivation_share <= 1.0:
            raise InvalidConfiguration(
                f"--max-deactivation-share {max_deactivation_share} is not a share; give a "
                "number from 0 to 1 (0.2 means 20%)"
            )
        if scim_rate_limit is not None:
            if kind is not SourceKind.SCIM:
                raise InvalidConfiguration(_rate_limit_is_scim(name))
            try:
                scim_rate_limit = requests_per_second(scim_rate_limit)
            except InvalidConfiguration as exc:
                raise InvalidConfiguration(f"--scim-rate-limit {exc}") from None
        return cls(
            domain=name,
            source=kind,
            groups=selected,
            alias_domains=aliases,
            protected=_unique(_email(email, "protected email") for email in protected),
            admin_email=admin,
            enabled=enabled,
            max_deactivations=int(max_deactivations),
            max_deactivation_share=float(max_deactivation_share),
            scim_rate_limit=scim_rate_limit,
        )


def _rate_limit_is_scim(domain: str) -> str:
    return (
        f"--scim-rate-limit is for SCIM domains, whose IdP pushes to komeet-sync; {domain} "
        "is read from Google Workspace, and sends no request to limit"
    )


def requests_per_second(value: object) -> int:
    """A SCIM rate limit as given: a whole number of requests a second from 1 to
    MAX_SCIM_RATE_LIMIT; otherwise InvalidConfiguration, whose message starts with the
    value, for the caller to put after the option or variable that gave it."""
    text = str(value).strip()
    if text.isascii() and text.isdigit() and 1 <= int(text) <= MAX_SCIM_RATE_LIMIT:
        return int(text)
    raise InvalidConfiguration(
        f"{str(value)[:40]!r} is not a number of requests a second: give a whole number "
        f"from 1 to {MAX_SCIM_RATE_LIMIT:,}"
    )


# Each list of a configuration: the option that gives it, and what its items are.
_LIST_OPTIONS = {
    "groups": ("--group", "selected groups"),
    "alias_domains": ("--alias-domain", "alias domains"),
    "protected": ("--protect", "protected accounts"),
}


def fold(name: str) -> str:
    """A SCIM group's display name as compared, when selected and when matched: spaces
    collapsed, case folded."""
    return " ".join(str(name).split()).casefold()


def _unique(
    values: Iterable[str], key: Callable[[str], str] = lambda value: value
) -> tuple[str, ...]:
    """The values without repeats (the first spelling of each is kept), in their order."""
    first: dict[str, str] = {}
    for value in values:
        first.setdefault(key(value), value)
    return tuple(first.values())


def _domain(value: str, what: str) -> str:
    try:
        return normalise_domain(value)
    except InvalidDomain as exc:
        raise InvalidConfiguration(
            f"invalid {what} {value!r}: {exc.reason}; {WHAT_A_DOMAIN_IS}"
        ) from None


def _email(value: str, what: str) -> str:
    try:
        return normalise_email(value)
    except InvalidEmail as exc:
        raise InvalidConfiguration(f"invalid {what} {value!r}: {exc.reason}") from None


def _group_name(value: str) -> str:
    name = " ".join(str(value).split())
    if not name:
        raise InvalidConfiguration("an empty group name was given; give the group's displayName")
    return name
