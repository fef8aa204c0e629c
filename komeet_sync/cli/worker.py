"""``komeet-sync worker``: IdP pushes to Komeet in seconds (``runs.worker``); this module
parses and prints."""

from __future__ import annotations

import argparse
import json
import sys

from komeet_sync.cli.output import (
    DATABASE,
    EXIT_ERROR,
    EXIT_OK,
    KOMEET,
    NOTIFY,
    UserError,
    command,
    domain_store,
    komeet_client,
)


def register(commands) -> None:
    worker = command(
        commands,
        "worker",
        "sync the people each SCIM push changed, as the pushes arrive (a long-running service)",
        _worker,
        environment=DATABASE + KOMEET + NOTIFY,
        exit_meanings={EXIT_ERROR: "an error; with --once, a batch that failed"},
    )
    worker_options(worker)
    worker.add_argument(
        "--once",
        action="store_true",
        help="sync what is pending now, then exit (default: run until Ctrl-C or SIGTERM)",
    )
    worker.epilog = (
        "One line per batch of changes decided together (--json: one JSON object per line).\n"
        "Ctrl-C stops the writes at once: the requests in flight get their answer and their\n"
        "ledger row; the changes of an unfinished batch stay pending and the next\n"
        "`komeet-sync worker` decides them again.\n\n"
        f"{worker.epilog}"
    )


def worker_options(parser: argparse.ArgumentParser) -> None:
    """The worker's pace, also given to ``scim serve --worker``."""
    parser.add_argument(
        "--batch-wait",
        type=float,
        default=0.1,
        metavar="SECONDS",
        help="wait this long after a domain's first pending change, so that changes arriving "
        "together are decided together (default 0.1)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=50.0,
        metavar="N",
        help="the most writes a second to Komeet for one domain (default 50)",
    )


def start_worker(args: argparse.Namespace, engine, client):
    """A worker paced as the options say, after checking them."""
    from komeet_sync.runs.worker import Options, Worker

    if not 0 <= args.batch_wait <= 60:
        raise UserError(f"--batch-wait {args.batch_wait:g}: give 0 to 60 seconds (default 0.1)")
    if not 0 < args.rate <= 10_000:
        raise UserError(f"--rate {args.rate:g}: give 1 to 10000 writes a second (default 50)")
    return Worker(
        engine,
        client,
        Options(batch_wait=args.batch_wait, rate=args.rate),
        stopping=client.stopping,
    )


def print_batch(batch, as_json: bool) -> None:
    """One line for a batch: what it decided and sent, or why it failed."""
    if as_json:
        print(json.dumps(batch.as_dict(), default=str), flush=True)
        return
    if batch.error is not None:
        print(
            f"{batch.domain}: {batch.changes} change(s) not synced, tried again shortly: "
            f"{batch.error}",
            file=sys.stderr,
            flush=True,
        )
        return
    summary = batch.sync.summary()
    actions = ", ".join(f"{kind} {count}" for kind, count in summary["actions"].items())
    line = f"{batch.domain}: {batch.changes} change(s), {summary['people']} person(s) read"
    line += f": {actions} ({summary['plan_id']})" if actions else ": nothing to send"
    if batch.latencies:
        line += f", reached Komeet {max(batch.latencies):.2f} s after the push"
    if summary["held_plan_id"]:
        line += (
            f"; deactivations over the budget HELD in {summary['held_plan_id']} "
            f"(`komeet-sync plans show {summary['held_plan_id']}`)"
        )
    stopped = summary["stopped"]
    if stopped:
        line += f"; not sent: {stopped['detail']}"
    print(line, flush=True)


def _worker(args: argparse.Namespace) -> int:
    from komeet_sync.notify.delivery import Courier

    store = domain_store()
    client = komeet_client()
    worker = start_worker(args, store.engine, client)
    args.interrupts.writing(client, "the worker")
    if args.once:
        batches = worker.run_once(wait=False)
        for batch in batches:
            print_batch(batch, args.json)
        if not batches and not args.json:
            print("No change pending.")
        if args.interrupts.stopped:
            return args.interrupts.exit_code
        return EXIT_ERROR if any(batch.error for batch in batches) else EXIT_OK
    if not args.json:
        print(
            "Syncing the people each SCIM push changes; Ctrl-C stops.",
            file=sys.stderr,
            flush=True,
        )
    courier = Courier(store.engine).start()
    try:
        worker.run(lambda batch: print_batch(batch, args.json))
    finally:
        courier.close()
    print(
        "Stopped. Changes not yet synced stay pending: `komeet-sync worker` syncs them.",
        file=sys.stderr,
        flush=True,
    )
    return args.interrupts.exit_code if args.interrupts.stopped else EXIT_OK
