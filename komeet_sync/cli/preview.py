"""``domains set|add --preview``: what a new configuration would do compared with today's,
printed before anything is saved, and the confirmation that saves it (``--yes``, or a
prompt on a terminal; nothing is saved otherwise)."""

from __future__ import annotations

import argparse
import json
import sys

from komeet_sync.cli.output import EXIT_ERROR, UserError, komeet_client

PREVIEW_HELP = (
    "read the directory and Komeet, and show what this configuration would do compared "
    "with today's (joiners, leavers, people moving out of scope, whether a guard would "
    "hold the plan) before saving it: on a terminal it asks; --yes saves without asking"
)


def preview_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preview", action="store_true", help=PREVIEW_HELP)
    parser.add_argument("--yes", action="store_true", help="with --preview: save without asking")


def refuse_yes_alone(args: argparse.Namespace) -> None:
    """``--yes`` confirms a preview: alone it would confirm nothing."""
    if args.yes and not args.preview:
        raise UserError("--yes confirms a --preview: give both, or neither")


def previewed(args: argparse.Namespace, engine, today, proposed) -> tuple[bool, dict]:
    """Preview ``proposed`` against ``today`` (None: a domain not yet configured), print it
    (unless ``--json``) and ask: whether to save, and the preview as JSON values. Saving
    needs ``--yes``, or "y" at the prompt on a terminal."""
    from komeet_sync.komeet.client import KomeetError
    from komeet_sync.model.domain_config import SourceKind
    from komeet_sync.runs.selection import preview
    from komeet_sync.sources.google.credentials import GoogleError
    from komeet_sync.sources.google.reader import reader_for

    if today is None and proposed.source is SourceKind.SCIM:
        raise UserError(
            f"--preview has nothing to read for a new SCIM domain: {proposed.domain}'s users "
            "arrive when its IdP pushes them, after it is added; add it without --preview, "
            "then preview group changes with 'domains set --preview'"
        )
    client = komeet_client()
    try:
        google = proposed.source is SourceKind.GOOGLE
        reader = reader_for(proposed, engine=engine) if google else None
        found = preview(engine, today, proposed, client, reader)
    except (GoogleError, KomeetError) as exc:
        raise UserError(str(exc)) from None
    shown = found.as_dict()
    if not args.json:
        _print_preview(found, today, proposed)
    if args.yes:
        return True, shown
    if args.json or not sys.stdin.isatty():
        return False, shown
    answer = input("Save this selection? [y/N] ").strip().lower()
    return answer in ("y", "yes"), shown


def not_saved(args: argparse.Namespace, shown: dict) -> int:
    """Nothing was saved: say so, and how to confirm."""
    how = "run the same command with --yes to save it"
    if args.json:
        print(json.dumps({"preview": shown, "saved": False, "confirm": how}, indent=2))
    print(f"komeet-sync: nothing saved; {how}", file=sys.stderr)
    return EXIT_ERROR


def _print_preview(found, today, proposed) -> None:
    before = ", ".join(today.groups) if today is not None else "(not configured)"
    print(f"Preview for {proposed.domain}, nothing saved yet:")
    print(f"  groups today:     {before or '(none: every user)'}")
    print(f"  groups proposed:  {', '.join(proposed.groups) or '(none: every user)'}")
    today_desired = found.today.stats["desired"] if found.today is not None else 0
    desired = found.proposed.stats["desired"]
    print(f"  desired people:   {today_desired:,} -> {desired:,} ({desired - today_desired:+,})")
    for title, difference, line in (
        (
            "Joiners (accounts to create or reactivate)",
            found.joiners,
            lambda r: f"{r.email}: {r.situation}, {str(r.reason).split(';')[0]}",
        ),
        (
            "Leavers (accounts to deactivate)",
            found.leavers,
            lambda r: (
                f"{r.email}: {str(r.reason).split(';')[0]}"
                + (" (protected: kept active)" if r.protected else "")
            ),
        ),
    ):
        _print_difference(title, difference, line)
    moving = found.out_of_scope
    print(
        f"  Moving out of scope (desired today, in none of the proposed groups): "
        f"{len(moving.rows):,}" + (":" if len(moving.rows) else "")
    )
    _print_rows(moving.rows, lambda r: f"{r.email} ({r.org_unit or 'no org unit'})")
    print(
        f"  Active users in no selected group: {moving.today:,} today, "
        f"{moving.proposed:,} proposed."
    )
    plan = found.proposed.plan
    if plan.held:
        print("  A guard would HOLD the proposed plan: nothing is sent until it is approved:")
        for hold in plan.holds:
            print(f"    - {hold.guard.value}: {hold.detail}")
    else:
        print("  No guard would hold the proposed selection's plan.")


def _print_difference(title: str, difference, line) -> None:
    added = len(difference.rows)
    print(
        f"  {title}: {difference.today:,} today, {difference.proposed:,} with the proposed "
        f"configuration" + (f"; {added:,} of them new:" if added else "")
    )
    _print_rows(difference.rows, line)


def _print_rows(rows, line) -> None:
    from komeet_sync.runs.selection import FIRST_ROWS

    for row in rows.head(FIRST_ROWS).itertuples(index=False):
        print(f"    {line(row)}")
    if len(rows) > FIRST_ROWS:
        print(f"    ... and {len(rows) - FIRST_ROWS:,} more")
