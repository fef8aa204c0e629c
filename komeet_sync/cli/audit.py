"""``komeet-sync audit``: the offline audit of exported files."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from komeet_sync.cli.domains import policy_options
from komeet_sync.cli.output import (
    EXIT_HELD,
    EXIT_OK,
    PLAN_EXIT_CODES,
    ConsoleProgress,
    UserError,
    command,
    print_summary,
)


def register(commands) -> None:
    audit = command(
        commands,
        "audit",
        "reconcile exported files and write the reports",
        _audit,
        environment=(),
        exit_codes=PLAN_EXIT_CODES,
    )
    audit.add_argument("--domain", required=True)
    policy_options(audit)
    audit.add_argument(
        "--google-users", type=Path, metavar="FILE", help="users.list export (User resources)"
    )
    audit.add_argument(
        "--google-members",
        type=Path,
        metavar="FILE",
        help="members of each group: {group email: [Member, ...]}",
    )
    audit.add_argument(
        "--scim-users", type=Path, metavar="FILE", help="SCIM User resources the IdP pushed"
    )
    audit.add_argument(
        "--scim-groups", type=Path, metavar="FILE", help="SCIM Group resources the IdP pushed"
    )
    audit.add_argument(
        "--komeet", type=Path, metavar="FILE", required=True, help="Komeet's SCIM User resources"
    )
    audit.add_argument(
        "--last-good-count",
        type=int,
        metavar="N",
        help="desired people in the last good snapshot (for the shrink guard)",
    )
    audit.add_argument(
        "--out", type=Path, metavar="DIR", required=True, help="folder for the reports"
    )


def _audit(args: argparse.Namespace) -> int:
    from komeet_sync.model.domain_config import DomainConfig, InvalidConfiguration
    from komeet_sync.model.frames import FrameError
    from komeet_sync.runs.audit import run_audit
    from komeet_sync.sources.exports import DirectoryExport, ExportFormatError

    if args.last_good_count is not None and args.last_good_count < 0:
        raise UserError(
            f"--last-good-count {args.last_good_count} is negative; give the number of desired "
            "people in the last good snapshot (0 or more), or leave it out"
        )
    files = DirectoryExport(
        google_users=args.google_users,
        google_members=args.google_members,
        scim_users=args.scim_users,
        scim_groups=args.scim_groups,
    )
    try:
        source = files.source
        if source == "google" and not args.groups:
            raise UserError("a Google audit needs --group: the emails of the selected groups")
        config = DomainConfig.create(
            args.domain,
            source,
            groups=args.groups,
            alias_domains=args.alias_domains,
            protected=args.protected,
            max_deactivations=args.max_deactivations,
            max_deactivation_share=args.max_deactivation_share,
            require_admin=False,
        )
        result = run_audit(
            config,
            files,
            args.komeet,
            args.out,
            last_good_desired=args.last_good_count,
            progress=ConsoleProgress(args),
        )
    except (InvalidConfiguration, ExportFormatError, FrameError) as exc:
        raise UserError(str(exc)) from None
    except OSError as exc:  # an --out that is a file, a folder we may not write, ...
        raise UserError(f"{exc.filename or args.out}: {exc.strerror}") from None
    summary = result.summary()
    if args.json:
        print(json.dumps(summary | {"out": str(args.out)}, indent=2))
    else:
        print_summary(summary, str(args.out))
    return EXIT_HELD if result.plan.held else EXIT_OK
