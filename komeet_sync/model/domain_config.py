"""A domain configuration: how one customer email domain is synced (ARCHITECTURE.md,
"Configuration: one per domain").

Pure: it validates and normalises what an admin typed; storing it is ``domain_store``'s job.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from komeet_sync.model.emails import InvalidEmail, normalise_domain, normalise_email

DEFAULT_MAX_DEACTIVATIONS = 500
DEFAULT_MAX_DEACTIVATION_SHARE = 0.2


class SourceKind(StrEnum):
    """How a domain's directory reaches us."""

    GOOGLE = "google"  # pulled through the Admin SDK Directory API
    SCIM = "scim"  # pushed by Entra ID or Okta to our SCIM endpoint


class InvalidConfiguration(ValueError):
    """A domain configuration that cannot be accepted; the message says what to change."""


@dataclass(frozen=True)
class DomainConfig:
    """One domain's sync settings, already validated and normalised.

    ``groups`` are group emails for Google and group display names for SCIM; an empty tuple
    for SCIM means every active user the IdP pushes is in scope.
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

    @property
    def domains(self) -> tuple[str, ...]:
        """The domain and its alias domains: a Komeet account is this domain's when its
        userName is in one of them."""
        return (self.domain, *self.alias_domains)

    def as_dict(self) -> dict[str, object]:
        """The configuration as JSON values (``domains show --json``)."""
        return {
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
        aliases = tuple(dict.fromkeys(_domain(alias, "alias domain") for alias in alias_domains))
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
            selected = tuple(dict.fromkeys(_email(group, "group email") for group in groups))
            admin = _email(admin_email, "admin email") if admin_email else None
        else:
            selected = tuple(dict.fromkeys(_group_name(group) for group in groups))
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
        return cls(
            domain=name,
            source=kind,
            groups=selected,
            alias_domains=aliases,
            protected=tuple(dict.fromkeys(_email(email, "protected email") for email in protected)),
            admin_email=admin,
            enabled=enabled,
            max_deactivations=int(max_deactivations),
            max_deactivation_share=float(max_deactivation_share),
        )


def _domain(value: str, what: str) -> str:
    text = str(value).strip()
    if "@" in text:
        raise InvalidConfiguration(
            f"invalid {what} {value!r}: give the domain alone, without a mailbox (acme.com)"
        )
    try:
        return normalise_domain(text)
    except ValueError as exc:
        raise InvalidConfiguration(f"invalid {what} {value!r}: {exc}") from None


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
