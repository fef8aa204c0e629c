"""``komeet-sync plans ...``: stored provisioning plans, and their approval by id."""

from __future__ import annotations

import argparse
import json

from tabulate import tabulate

from komeet_sync.cli.output import EXIT_OK, Parser, UserError, command, domain_store


def register(commands) -> None:
    plans = commands.add_parser("plans", help="stored provisioning plans and their approvals")
    group = plans.add_subparsers(title="plan commands", parser_class=Parser)
    listing = command(group, "list", "the latest plans, newest first", _list)
    listing.add_argument("--domain", help="only this domain's plans")
    listing.add_argument("--limit", type=int, default=20, help="default 20")
    show = command(group, "show", "a plan: its holds, approval, actions and ledger", _show)
    show.add_argument("plan_id", metavar="PLAN_ID")
    show.add_argument("--limit", type=int, default=50, help="actions listed (default 50; 0: all)")
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
        frame["created_at"] = frame["created_at"].dt.strftime("%Y-%m-%d %H:%M")
        print(tabulate(frame.fillna(""), headers="keys", showindex=False))
    return EXIT_OK


def _show(args: argparse.Namespace) -> int:
    from komeet_sync.store.ledger import Ledger
    from komeet_sync.store.plans import PlanError, PlanStore

    engine = domain_store().engine
    plans = PlanStore(engine)
    try:
        plan = plans.get(args.plan_id)
    except PlanError as exc:
        raise UserError(str(exc)) from None
    actions = plans.actions(plan.plan_id)
    ledger = Ledger(engine).entries(plan.plan_id)
    if not ledger.empty:
        actions = actions.merge(
            ledger[["position", "status", "outcome"]], on="position", how="left"
        )
    if args.json:
        listed = json.loads(actions.to_json(orient="records"))
        print(json.dumps(plan.as_dict() | {"actions": listed}, indent=2))
        return EXIT_OK
    print(f"Plan {plan.plan_id} for {plan.domain}, made {plan.created_at:%Y-%m-%d %H:%M} UTC")
    print(f"  source {plan.source}, {plan.desired:,} desired people; reports in {plan.reports}")
    counts = ", ".join(f"{count:,} {action}" for action, count in plan.counts.items())
    print(f"  actions: {counts or 'none'}")
    for hold in plan.holds:
        print(f"  HELD by {hold.guard.value}: {hold.detail}")
    if plan.approved_by:
        print(f"  approved by {plan.approved_by} at {plan.approved_at:%Y-%m-%d %H:%M} UTC")
    elif plan.waiting_for_approval:
        print(f"  waiting for approval: komeet-sync plans approve {plan.plan_id} --by NAME")
    if ledger.empty:
        print("  never applied")
    else:
        state = ", ".join(f"{n:,} {s}" for s, n in ledger["status"].value_counts().items())
        print(f"  last application: {state}")
    shown = actions if args.limit <= 0 else actions.head(args.limit)
    columns = [
        c
        for c in ["action", "user_name", "komeet_id", "changes", "status", "outcome", "reason"]
        if c in shown
    ]
    if not shown.empty:
        print()
        print(tabulate(shown[columns].fillna(""), headers="keys", showindex=False, maxcolwidths=48))
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
    if args.json:
        approval = plan.as_dict()
        print(json.dumps({key: approval[key] for key in ("plan_id", "approved_by", "approved_at")}))
        return EXIT_OK
    if before.approved_by is not None:
        print(
            f"{plan.plan_id} was already approved by {plan.approved_by} at "
            f"{plan.approved_at:%Y-%m-%d %H:%M} UTC."
        )
    else:
        print(f"Approved {plan.plan_id} as {plan.approved_by}.")
    print(f"Apply it with `komeet-sync apply {plan.plan_id}`.")
    return EXIT_OK
