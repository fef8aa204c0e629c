"""``komeet-sync explain DOMAIN EMAIL``: why one person or account gets the decision it gets,
every rule that decided, in sentences (``runs.explain``); this module parses and prints."""

from __future__ import annotations

import argparse
import json

from komeet_sync.cli.output import (
    DATABASE,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_NOT_FOUND,
    EXIT_OK,
    GOOGLE,
    KOMEET,
    RESULTS,
    SECRET_KEY,
    UserError,
    command,
    configured,
    komeet_client,
)


def register(commands) -> None:
    explain = command(
        commands,
        "explain",
        "why a person or a Komeet account gets its decision: the source record, valid or "
        "why not, active or why not, the selected groups (and nested groups) it is in, the "
        "accounts considered and the rule that matched each, or the dispute, the situation, "
        "the action, any guard holding it, and the last ledger outcomes",
        _explain,
        environment=DATABASE + RESULTS + KOMEET + GOOGLE + SECRET_KEY,
        exit_codes=(EXIT_OK, EXIT_ERROR, EXIT_NOT_FOUND, EXIT_INTERRUPTED),
        exit_meanings={EXIT_OK: "explained"},
    )
    explain.add_argument("domain")
    explain.add_argument("email", help="a person's primary email or alias, or an account's")
    explain.add_argument(
        "--last",
        action="store_true",
        help="decide from what the domain's last stored sync read, instead of reading the "
        "source and Komeet now",
    )


def _explain(args: argparse.Namespace) -> int:
    from komeet_sync.komeet.client import KomeetError
    from komeet_sync.model.domain_config import SourceKind
    from komeet_sync.runs.explain import NoStoredSync, explain, sides_for
    from komeet_sync.sources.google.credentials import GoogleError
    from komeet_sync.sources.google.reader import reader_for
    from komeet_sync.store.results import ResultStore
    from komeet_sync.store.sync_folder import ResultError

    store, config = configured(args.domain)
    try:
        if args.last:
            sides = sides_for(config, store.engine, last=True, store=ResultStore.from_settings())
        else:
            google = config.source is SourceKind.GOOGLE
            reader = reader_for(config, engine=store.engine) if google else None
            sides = sides_for(config, store.engine, reader=reader, client=komeet_client())
        explanation = explain(
            config, args.email, sides.people, sides.accounts, store.engine, origin=sides.origin
        )
    except (NoStoredSync, GoogleError, KomeetError, ResultError) as exc:
        raise UserError(str(exc)) from None
    if args.json:
        print(json.dumps(explanation.as_dict(), indent=2, default=str))
    else:
        print(explanation.text())
    return EXIT_OK if explanation.found else EXIT_NOT_FOUND
