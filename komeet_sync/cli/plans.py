"""``komeet-sync plans ...``: stored provisioning plans, where each stands, and their approval
by id. Tables fit the terminal's width."""

from __future__ import annotations

import argparse
import json

from komeet_sync.cli.output import (
    EXIT_OK,
    Columns,
    Parser,
    UserError,
    command,
    domain_store,
    fitted_table,
)

# Columns of each table, most important first, with their narrowest widths (``fitted_table``).
LIST_COLUMNS: Columns = [
    ("plan_id", None),
    ("state", 25),  # "superseded by PLAN_ID" wraps before the id
    ("created_at", None),
    ("actions", None),
    ("domain", 12),
    ("approved_by", 12),
    ("held", 12),
]
ACTION_COLUMNS: Columns = [
    ("action", None),
    ("user_name", None),
    ("status", None),
    ("outcome", 16),
    ("changes", 16),
    ("reason", 16),
    ("komeet_id", None),
]
FAILED_COLUMNS: Columns = [
    ("action", None),
    ("user_name", None),
    ("outcome", 20),
    ("http_status", None),
    ("reason", 16),
    ("komeet_id", None),
]


def register(commands) -> None:
    plans = commands.add_parser("plans", help="stored provisioning plans and their approvals")
    group = plans.add_subparsers(title="plan commands", parser_class=Parser)
    listing = command(group, "list", "the latest plans, newest first, and their state", _list)
    listing.add_argument("--domain", help="only this domain's plans")
    listing.add_argument("--limit", type=int, default=20, help="default 20")
    show = command(group, "show", "a plan: its state, holds, approval, actions and ledger", _show)
    show.add_argument("plan_id", metavar="PLAN_ID")
    show.add_argument("--limit", type=int, default=50, help="actions listed (default 50; 0: all)")
    show.add_argument(
        "--failed",
        action="store_true",
        help="only the actions Komeet refused in the latest application, with their outcome",
    )
    approve = command(
        group, "approve", "approve a held plan, by its id, so that it may be applied", _approve
    )
    approve.add_argument("plan_id", metavar="PLAN_ID")
    approve.add_argument("--by", required=True, metavar="NAME", help="who approves it")


def _list(args: argparse.Namespace) -> int:
    from komeet_sync.store.plans import PlanStore

    frame = PlanStore(domain_store().engine).list(args.domain, max(1, args.limit))
    if args.json:
        print(frame.to_json(orient="records", date_format="iso", indent=2))
    elif frame.empty:
        print("No plan is stored yet: `komeet-sync sync DOMAIN` makes one.")
    else:
        shown = frame.drop(columns="state").rename(columns={"state_text": "state"})
        shown["created_at"] = shown["created_at"].dt.strftime("%Y-%m-%d %H:%M")
        print(fitted_table(shown, LIST_COLUMNS))
    return EXIT_OK


def _show(args: argparse.Namespace) -> int:
    from komeet_sync.runs.retention import reports_missing
    from komeet_sync.settings import SettingError
    from komeet_sync.store.ledger import Ledger
    from komeet_sync.store.plans import PlanError, PlanStore

    engine = domain_store().engine
    plans = PlanStore(engine)
    try:
        plan = plans.get(args.plan_id)
        missing = reports_missing(plan)
    except (PlanError, SettingError) as exc:
        raise UserError(str(exc)) from None
    status = plans.status(plan)
    actions = plans.actions(plan.plan_id)
    ledger = Ledger(engine).entries(plan.plan_id)
    if not ledger.empty:
        outcomes = ledger[["position", "status", "outcome", "http_status"]].astype(
            {"http_status": "Int64"}
        )
        actions = actions.merge(outcomes, on="position", how="left")
    if args.failed:
        actions = actions[actions["status"] == "failed"] if not ledger.empty else actions.head(0)
    else:
        actions = actions.drop(columns="http_status", errors="ignore")
    if args.json:
        listed = json.loads(actions.to_json(orient="records"))
        facts = plan.as_dict() | {"reports_missing": missing} | status.as_dict()
        print(json.dumps(facts | {"actions": listed}, indent=2))
        return EXIT_OK
    print(f"Plan {plan.plan_id} for {plan.domain}, made {plan.created_at:%Y-%m-%d %H:%M} UTC")
    print(f"  state: {status}")
    print(f"  source {plan.source}, {plan.desired:,} desired people; reports in {plan.reports}")
    if missing:
        print(f"  {missing}")
    counts = ", ".join(f"{count:,} {action}" for action, count in plan.counts.items())
    print(f"  actions: {counts or 'none'}")
    for hold in plan.holds:
        print(f"  HELD by {hold.guard.value}: {hold.detail}")
    if plan.approved_by:
        print(f"  approved by {plan.approved_by} at {plan.approved_at:%Y-%m-%d %H:%M} UTC")
    if ledger.empty:
        print("  never applied")
    else:
        state = ", ".join(f"{n:,} {s}" for s, n in ledger["status"].value_counts().items())
        print(f"  last application: {state}")
    # Not wrapped, so that a command in it can be copied whole.
    print(f"  {status.next_step()}")
    shown = actions if args.limit <= 0 else actions.head(args.limit)
    if args.failed and actions.empty:
        print()
        print(f"No action of {plan.plan_id} failed in its latest application.")
    elif not shown.empty:
        print()
        print(fitted_table(shown, FAILED_COLUMNS if args.failed else ACTION_COLUMNS))
    if len(shown) < len(actions):
        print(f"... and {len(actions) - len(shown):,} more (--limit 0 lists them all)")
    return EXIT_OK


def _approve(args: argparse.Namespace) -> int:
    from komeet_sync.store.plans import PlanError, PlanStore

    plans = PlanStore(domain_store().engine)
    try:
        before = plans.get(args.plan_id)
        plan = plans.approve(args.plan_id, args.by)
    except PlanError as exc:
        raise UserError(str(exc)) from None
    status = plans.status(plan)
    if args.json:
        approval = plan.as_dict()
        fields = ("plan_id", "approved_by", "approved_at")
        print(json.dumps({key: approval[key] for key in fields} | status.as_dict()))
        return EXIT_OK
    if before.approved_by is not None:
        print(
            f"{plan.plan_id} was already approved by {plan.approved_by} at "
            f"{plan.approved_at:%Y-%m-%d %H:%M} UTC."
        )
    else:
        print(f"Approved {plan.plan_id} as {plan.approved_by}.")
    print(f"{status.next_step()}.")
    return EXIT_OK
