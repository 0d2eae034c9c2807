"""`shopchain points ...` and `shopchain voucher ...`: loyalty programs, referrals, vouchers.

How it works: one verb per transition of the loyalty contract (docs/commerce.md).
Rates are percentages ("1.5%"), amounts currency units, periods durations ("365d",
"12h"). The contract keeps expiries and validity windows as unix times of certified
block time; a voucher's window starts at the chain's latest block time.
"""

from __future__ import annotations

from typing import Any

import click

from cli.output import CliError, format_amount, format_percent, parse_amount, parse_commitment, parse_percent
from cli.signer import Query, Tx, query_command, tx_command
from cli.timefmt import chain_now, format_time, parse_duration
from ledger.crypto import sha256
from ledger.hexfmt import to_hex

# --- points -------------------------------------------------------------------------------

@click.group()
def points() -> None:
    """Loyalty points: programs, awards, redemption, referrals."""


@points.command("create-program")
@click.argument("program")
@click.option("--rate", required=True, help="Points per unit paid, as a percentage of the amount, e.g. 1%.")
@click.option("--expiry", required=True, help="How long awarded points last (e.g. 365d).")
@tx_command
def points_create(program: str, rate: str, expiry: str, tx: Tx) -> None:
    """ISSUER: create loyalty PROGRAM."""
    bps = parse_percent(rate, "--rate")
    tx.send("loyalty", "create_program", program, bps, parse_duration(expiry, "--expiry", minimum=3600),
            describe=lambda r: f"program {program} created ({format_percent(bps)})")


@points.command("set-value")
@click.argument("program")
@click.option("--point-value", required=True, help="What one point pays, in currency units (e.g. 0.01).")
@click.option("--max-share", required=True, help="The largest share of an order points may pay, e.g. 20%.")
@tx_command
def points_set_value(program: str, point_value: str, max_share: str, tx: Tx) -> None:
    """Program issuer: let points pay part of this merchant's orders (`order place --points N`)."""
    value = parse_amount(point_value, "--point-value", allow_zero=True)
    share = parse_percent(max_share, "--max-share")
    tx.send("loyalty", "set_point_value", program, value, share,
            describe=lambda r: f"a point of {program} pays {format_amount(value)}, at most "
                               f"{format_percent(share)} of an order")


@points.command("award")
@click.argument("program")
@click.argument("order_id", type=click.IntRange(1), metavar="ORDER")
@tx_command
def points_award(program: str, order_id: int, tx: Tx) -> None:
    """Program issuer: award points for a CLOSED ORDER."""
    tx.send("loyalty", "award", program, order_id,
            describe=lambda r: f"{r['return_value']} points awarded for order {order_id}")


@points.command("redeem")
@click.argument("program")
@click.argument("amount", type=click.IntRange(1))
@tx_command
def points_redeem(program: str, amount: int, tx: Tx) -> None:
    """Holder: redeem AMOUNT points (oldest lots first)."""
    tx.send("loyalty", "redeem", program, amount, describe=lambda r: f"{amount} points redeemed")


@points.command("expire")
@click.argument("program")
@click.argument("account")
@tx_command
def points_expire(program: str, account: str, tx: Tx) -> None:
    """Anyone: sweep ACCOUNT's lapsed points."""
    tx.send("loyalty", "expire", program, tx.account(account, "ACCOUNT"),
            describe=lambda r: f"{r['return_value']} points expired")


@points.command("clawback")
@click.argument("program")
@click.argument("order_id", type=click.IntRange(1), metavar="ORDER")
@tx_command
def points_clawback(program: str, order_id: int, tx: Tx) -> None:
    """Issuer: take back points for refunds recorded after the award."""
    tx.send("loyalty", "clawback", program, order_id,
            describe=lambda r: f"{r['return_value']} points clawed back")


@points.command("balance")
@click.argument("program")
@click.argument("account")
@query_command
def points_balance(program: str, account: str, q: Query) -> None:
    """Show ACCOUNT's live points in PROGRAM."""
    who = q.account(account, "ACCOUNT")
    result = {"program": program, "account": to_hex(who), "points": q.view("loyalty", "balance_of", program, who),
              "in_lots": q.view("loyalty", "held_in_lots", program, who)}
    q.emit(result, lambda r: f"{r['points']} points ({r['in_lots']} in lots incl. lapsed) in {program}")


@points.command("program")
@click.argument("program")
@query_command
def points_program(program: str, q: Query) -> None:
    """Show PROGRAM: issuer, rate and totals."""
    found = q.view("loyalty", "get_program", program)
    if found is None:
        raise CliError(f"no loyalty program {program!r}", hint="an ISSUER creates it with `points create-program`")
    q.emit(found)


@points.command("approve-referrer")
@click.argument("referrer")
@click.option("--commission", required=True, help="Commission rate, e.g. 5%.")
@click.option("--budget", required=True, help="Total commission budget, in currency units.")
@click.option("--pair-cap", required=True, help="Most commission per (referrer, buyer), in currency units.")
@tx_command
def points_approve_referrer(referrer: str, commission: str, budget: str, pair_cap: str, tx: Tx) -> None:
    """PLATFORM: approve REFERRER for referral commissions."""
    tx.send("loyalty", "approve_referrer", tx.account(referrer, "REFERRER"), parse_percent(commission, "--commission"),
            parse_amount(budget, "--budget"), parse_amount(pair_cap, "--pair-cap"),
            describe=lambda r: "referrer approved")


@points.command("suspend-referrer")
@click.argument("referrer")
@tx_command
def points_suspend_referrer(referrer: str, tx: Tx) -> None:
    """PLATFORM: suspend REFERRER."""
    tx.send("loyalty", "suspend_referrer", tx.account(referrer, "REFERRER"), describe=lambda r: "referrer suspended")


@points.command("referrer")
@click.argument("referrer")
@query_command
def points_referrer(referrer: str, q: Query) -> None:
    """Show REFERRER's rate, budget and what was paid."""
    found = q.view("loyalty", "referrer_of", q.account(referrer, "REFERRER"))
    if found is None:
        raise CliError(f"{referrer} is not an approved referrer")
    q.emit(found, lambda r: f"commission {format_percent(r['commission_bps'])}  budget {format_amount(r['budget'])}  "
                            f"pair cap {format_amount(r['pair_cap'])}  paid {format_amount(r['paid'])}  "
                            f"{'active' if r['active'] else 'suspended'}")


# --- voucher -------------------------------------------------------------------------------

@click.group()
def voucher() -> None:
    """Vouchers a merchant issues; buyers redeem them in `order place --voucher`."""


@voucher.command("create")
@click.argument("voucher_id", metavar="VOUCHER")
@click.option("--code", default=None, help="Secret code buyers must quote (omit for a bearer voucher).")
@click.option("--discount", required=True, help="Fixed amount (12.50) or a percentage (10%).")
@click.option("--min-spend", default="0", show_default=True, help="Smallest order price it applies to.")
@click.option("--valid-for", required=True, help="Valid from now for this long (e.g. 30d).")
@click.option("--max-uses", required=True, type=click.IntRange(1), help="Most redemptions in total.")
@click.option("--per-buyer", default=1, show_default=True, type=click.IntRange(1), help="Most redemptions per buyer.")
@tx_command
def voucher_create(voucher_id: str, code: str | None, discount: str, min_spend: str, valid_for: str, max_uses: int,
                   per_buyer: int, tx: Tx) -> None:
    """Merchant ISSUER: create VOUCHER (an id: text or 0x hash)."""
    if discount.strip().endswith("%"):
        kind, value = "BPS", parse_percent(discount, "--discount")
    else:
        kind, value = "FIXED", parse_amount(discount, "--discount")
    length = parse_duration(valid_for, "--valid-for", minimum=60)
    start = chain_now(tx.client.status())
    tx.send("loyalty", "create_voucher", parse_commitment(voucher_id, "VOUCHER"),
            sha256(code.encode("utf-8")) if code else b"", kind, value,
            parse_amount(min_spend, "--min-spend", allow_zero=True), start, start + length, max_uses,
            per_buyer, describe=lambda r: f"voucher {voucher_id} created")


@voucher.command("show")
@click.argument("voucher_id", metavar="VOUCHER")
@click.option("--buyer", default=None, help="Also show how often this buyer used it.")
@query_command
def voucher_show(voucher_id: str, buyer: str | None, q: Query) -> None:
    """Show VOUCHER: kind, value, window and redemptions."""
    vid = parse_commitment(voucher_id, "VOUCHER")
    found: Any = q.view("loyalty", "get_voucher", vid)
    if found is None:
        raise CliError(f"no voucher {voucher_id!r}")
    if buyer:
        found["buyer_uses"] = q.view("loyalty", "voucher_uses", vid, q.account(buyer, "--buyer"))
    q.emit(found, lambda v: f"voucher {voucher_id}: {v['kind']} "
                            f"{format_percent(v['value']) if v['kind'] == 'BPS' else format_amount(v['value'])}"
                            f"  min spend {format_amount(v['min_spend'])}\n"
                            f"  valid {format_time(v['valid_from'])} to {format_time(v['valid_to'])}  redeemed {v['redemptions']}/"
                            f"{v['max_redemptions']}  per buyer {v['per_buyer']}"
                            + (f"  this buyer {v['buyer_uses']}" if "buyer_uses" in v else ""))


def all_groups() -> list[Any]:
    return [points, voucher]
