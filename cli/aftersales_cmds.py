"""`shopchain warranty|review|ticket|provenance ...`: what happens after the sale.

How it works: one verb per transition of the warranty, reviews, tickets and
provenance contracts (docs/commerce.md). A unit is named by its id: a 0x hash, or
text such as "acme:SN-0001" whose SHA-256 is the id (brands should put their name in
the serial so units of different brands never collide). Periods are given in days and
turned into heights with the blocks-per-day value the passport or order carries.
Reviews are signed with the order's review key, derived from the buyer's key
(cli.orders_cmds.review_key_for), and relayed by the signer.
"""

from __future__ import annotations

from typing import Any

import click

from cli.orders_cmds import get_order, review_key_for
from cli.output import CliError, parse_commitment
from cli.signer import Query, Tx, id_transition, query_command, tx_command
from ledger.crypto import sha256
from ledger.hexfmt import to_hex

#: Review score dimensions: overall, quality, description, delivery, service.
SCORE_COUNT = 5
#: Most service records `warranty history` shows.
MAX_HISTORY = 500
#: Most reviews `review list` walks.
MAX_REVIEW_SCAN = 1000
SERVICE_KINDS = ["INSPECT", "REPAIR", "PART", "UNIT_SWAP", "REFURBISH", "AMEND"]
REMEDIES = ["REPAIR", "REPLACE", "REFUND"]

unit_argument = click.argument("unit", metavar="UNIT")
claim_argument = click.argument("claim_id", type=click.IntRange(1), metavar="CLAIM")
ticket_argument = click.argument("ticket_id", type=click.IntRange(1), metavar="TICKET")


def _unit(text: str) -> bytes:
    return parse_commitment(text, "UNIT")


def get_passport(q: Query, unit: bytes, text: str) -> dict:
    found = q.view("warranty", "get_passport", unit)
    if found is None:
        raise CliError(f"no warranty passport for unit {text!r} (id {to_hex(unit)})",
                       hint="the brand registers units with `shopchain warranty register UNIT --product P`")
    return found


# --- warranty -----------------------------------------------------------------------------

@click.group()
def warranty() -> None:
    """Warranty passports: register, activate, transfer, service history, claims."""


@warranty.command("register")
@unit_argument
@click.option("--product", required=True, help="Product id (0x hash or text, as used in orders).")
@tx_command
def warranty_register(unit: str, product: str, tx: Tx) -> None:
    """Brand (MERCHANT): register UNIT (e.g. "acme:SN-0001") of a product."""
    tx.send("warranty", "register_unit", _unit(unit), parse_commitment(product, "--product"),
            describe=lambda r: f"unit {unit} registered")


@warranty.command("activate")
@unit_argument
@click.option("--order", "order_id", required=True, type=click.IntRange(1), help="The completed order of the unit.")
@tx_command
def warranty_activate(unit: str, order_id: int, tx: Tx) -> None:
    """Anyone: activate UNIT's warranty from its COMPLETED order (the buyer becomes the owner)."""
    tx.send("warranty", "activate", _unit(unit), order_id, describe=lambda r: f"warranty of {unit} activated")


@warranty.command("authorize")
@click.argument("center")
@click.option("--revoke", is_flag=True, help="Withdraw the authorisation instead.")
@tx_command
def warranty_authorize(center: str, revoke: bool, tx: Tx) -> None:
    """Brand: let service centre CENTER record service on this brand's units."""
    tx.send("warranty", "authorize_service", tx.account(center, "CENTER"), not revoke,
            describe=lambda r: f"service centre {'de' if revoke else ''}authorised")


@warranty.command("show")
@unit_argument
@query_command
def warranty_show(unit: str, q: Query) -> None:
    """Show UNIT's passport: owner, warranty end, flags."""
    uid = _unit(unit)
    p = get_passport(q, uid, unit)
    covered = q.view("warranty", "under_warranty", uid)
    recalled = q.view("warranty", "is_recalled", uid)
    result = {**p, "under_warranty": covered, "recalled": recalled}
    q.emit(result, lambda r: f"unit {r['unit']}\n  brand {q.label(r['brand'])}  product {r['product']}\n"
                             f"  owner {q.label(r['owner'])}  order {r['order'] or '-'}\n"
                             f"  activated {'yes' if r['activated'] else 'no'}  under warranty "
                             f"{'yes' if r['under_warranty'] else 'no'} (ends at height {r['warranty_end']})"
                             f"{'  VOID' if r['void'] else ''}{'  RECALLED' if r['recalled'] else ''}\n"
                             f"  flags {', '.join(r['flags']) or '-'}  service records {r['log_count']}")


@warranty.command("history")
@unit_argument
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, MAX_HISTORY))
@query_command
def warranty_history(unit: str, limit: int, q: Query) -> None:
    """Show UNIT's service history (append-only; amendments name the record they correct)."""
    uid = _unit(unit)
    get_passport(q, uid, unit)
    records = q.view("warranty", "service_log", uid, limit)
    for r in records:
        r["contested"] = q.view("warranty", "is_contested", uid, r["seq"])
    q.emit(records, lambda rs: "\n".join(
        f"{r['seq']:>4}  height {r['height']:<8} {r['kind']:<10} by {q.label(r['by'])}"
        f"{'  under warranty' if r['under_warranty'] else ''}{'  amends ' + str(r['amends']) if r['amends'] else ''}"
        f"{'  CONTESTED' if r['contested'] else ''}" for r in rs) or "no service records")


@warranty.command("service")
@unit_argument
@click.option("--kind", required=True, type=click.Choice(SERVICE_KINDS, case_sensitive=False))
@click.option("--report", required=True, help="The service report (text, @FILE or 0x hash).")
@click.option("--under-warranty", is_flag=True, help="The work is covered by the warranty.")
@click.option("--amends", default=0, type=click.IntRange(0), help="For AMEND: the record number corrected.")
@tx_command
def warranty_service(unit: str, kind: str, report: str, under_warranty: bool, amends: int, tx: Tx) -> None:
    """Brand or authorised centre: append a service record to UNIT's history."""
    tx.send("warranty", "record_service", _unit(unit), kind.upper(), parse_commitment(report, "--report"),
            under_warranty, amends, describe=lambda r: f"service record {r['return_value']} added to {unit}")


@warranty.command("contest")
@unit_argument
@click.argument("seq", type=click.IntRange(1))
@click.option("--reason", required=True, help="Why (text, @FILE or 0x hash).")
@tx_command
def warranty_contest(unit: str, seq: int, reason: str, tx: Tx) -> None:
    """Owner: contest service record SEQ of UNIT."""
    tx.send("warranty", "contest", _unit(unit), seq, parse_commitment(reason, "--reason"),
            describe=lambda r: f"record {seq} of {unit} contested")


@warranty.command("transfer")
@unit_argument
@click.option("--code", required=True, help="One-time claim code to give the new owner.")
@click.option("--valid-days", default=7, show_default=True, type=click.IntRange(1, 366))
@tx_command
def warranty_transfer(unit: str, code: str, valid_days: int, tx: Tx) -> None:
    """Owner: offer UNIT to a new owner, who claims it with `warranty receive UNIT --code CODE`."""
    uid = _unit(unit)
    p = get_passport(tx, uid, unit)
    expiry = tx.client.status()["height"] + valid_days * p["blocks_per_day"]
    tx.send("warranty", "offer_transfer", uid, sha256(code.encode("utf-8")), expiry,
            describe=lambda r: f"transfer of {unit} offered until height {expiry}")


@warranty.command("receive")
@unit_argument
@click.option("--code", required=True, help="The claim code from the previous owner.")
@tx_command
def warranty_receive(unit: str, code: str, tx: Tx) -> None:
    """New owner: take UNIT over with the previous owner's claim code."""
    tx.send("warranty", "claim_transfer", _unit(unit), code.encode("utf-8"),
            describe=lambda r: f"you now own {unit}")


@warranty.command("claim")
@unit_argument
@click.option("--issue", required=True, help="What is wrong (text, @FILE or 0x hash).")
@tx_command
def warranty_claim(unit: str, issue: str, tx: Tx) -> None:
    """Owner: open a warranty claim on UNIT."""
    tx.send("warranty", "open_claim", _unit(unit), parse_commitment(issue, "--issue"),
            describe=lambda r: f"claim {r['return_value']} opened on {unit}")


@warranty.command("decide")
@claim_argument
@click.option("--accept/--reject", required=True, help="Accept or reject the claim.")
@tx_command
def warranty_decide(claim_id: int, accept: bool, tx: Tx) -> None:
    """Brand or its centre (PLATFORM once escalated): accept or reject CLAIM."""
    tx.send("warranty", "decide_claim", claim_id, accept,
            describe=lambda r: f"claim {claim_id} {'accepted' if accept else 'rejected'}")


@warranty.command("fulfil")
@claim_argument
@click.option("--remedy", required=True, type=click.Choice(REMEDIES, case_sensitive=False))
@click.option("--report", required=True, help="Record of the work (text, @FILE or 0x hash).")
@tx_command
def warranty_fulfil(claim_id: int, remedy: str, report: str, tx: Tx) -> None:
    """Brand or its centre: fulfil an accepted CLAIM."""
    tx.send("warranty", "fulfil_claim", claim_id, remedy.upper(), parse_commitment(report, "--report"),
            describe=lambda r: f"claim {claim_id} fulfilled")


# Verbs that take just the claim id: (name, method, help).
for _name, _method, _doc in [
    ("escalate", "escalate_claim", "Owner after a rejection, anyone after the reply deadline: escalate CLAIM."),
    ("close-claim", "close_claim", "Owner: close a fulfilled or rejected CLAIM."),
]:
    id_transition(warranty, _name, "warranty", _method, claim_argument, "claim", _doc)


@warranty.command("claim-show")
@claim_argument
@query_command
def warranty_claim_show(claim_id: int, q: Query) -> None:
    """Show a warranty claim."""
    found = q.view("warranty", "get_claim", claim_id)
    if found is None:
        raise CliError(f"no warranty claim {claim_id}")
    q.emit(found, lambda c: f"claim {c['id']} on unit {c['unit']}: {c['state']}\n"
                            f"  owner {q.label(c['owner'])}  reply by height {c['reply_by']}  remedy {c['remedy'] or '-'}")


@warranty.command("flag")
@unit_argument
@click.argument("flag", type=click.Choice(["LOST", "STOLEN"], case_sensitive=False))
@click.option("--off", is_flag=True, help="Clear the flag instead.")
@tx_command
def warranty_flag(unit: str, flag: str, off: bool, tx: Tx) -> None:
    """Owner: flag UNIT as LOST or STOLEN (blocks transfer, not service)."""
    tx.send("warranty", "set_flag", _unit(unit), flag.upper(), not off,
            describe=lambda r: f"{flag.upper()} {'cleared' if off else 'set'} on {unit}")


@warranty.command("recall")
@click.option("--product", required=True, help="Product id (0x hash or text).")
@click.option("--reason", required=True, help="Why (text, @FILE or 0x hash).")
@tx_command
def warranty_recall(product: str, reason: str, tx: Tx) -> None:
    """Brand: recall a product (its units can no longer be transferred)."""
    tx.send("warranty", "issue_recall", parse_commitment(product, "--product"), parse_commitment(reason, "--reason"),
            describe=lambda r: "recall issued")


@warranty.command("extend")
@unit_argument
@click.option("--days", required=True, type=click.IntRange(1, 3660), help="Days added to the warranty.")
@tx_command
def warranty_extend(unit: str, days: int, tx: Tx) -> None:
    """Brand: extend UNIT's warranty by DAYS."""
    uid = _unit(unit)
    p = get_passport(tx, uid, unit)
    new_end = p["warranty_end"] + days * p["blocks_per_day"]
    tx.send("warranty", "extend_warranty", uid, new_end, describe=lambda r: f"warranty of {unit} now ends at {new_end}")


@warranty.command("void")
@unit_argument
@click.option("--reason", required=True, help="Why (text, @FILE or 0x hash).")
@tx_command
def warranty_void(unit: str, reason: str, tx: Tx) -> None:
    """Brand: void UNIT's warranty."""
    tx.send("warranty", "void_warranty", _unit(unit), parse_commitment(reason, "--reason"),
            describe=lambda r: f"warranty of {unit} voided")


# --- review -------------------------------------------------------------------------------

def parse_scores(text: str) -> list[int]:
    try:
        scores = [int(s) for s in text.split(",")]
    except ValueError:
        scores = []
    if len(scores) != SCORE_COUNT or not all(1 <= s <= 5 for s in scores):
        raise CliError(f"--scores {text!r}: expected {SCORE_COUNT} comma-separated scores 1..5 "
                       f"(overall, quality, description, delivery, service), e.g. 5,4,5,5,4")
    return scores


def _signed_review(tx: Tx, order_id: int, line: int, scores: list[int], content: bytes, incentivised: bool,
                   version: int) -> tuple[bytes, bytes]:
    """(review public key, signature) for the order's review key, checked against the order."""
    from contracts_vm.system import review_message

    o = get_order(tx, order_id)
    rk = review_key_for(tx.signer, bytes.fromhex(o["payload_hash"][2:]))
    if to_hex(sha256(rk.public_key)) != o["review_key_hash"]:
        raise CliError(f"the signing key is not the buyer of order {order_id} (its review key does not match "
                       f"the order's commitment)", hint="sign with the buyer's key: --key BUYER")
    chain_id = tx.client.status()["chain_id"]
    return rk.public_key, rk.sign_raw(review_message(chain_id, order_id, line, scores, content, incentivised, version))


@click.group()
def review() -> None:
    """Verified-buyer reviews: post, amend, list, reply."""


@review.command("post")
@click.argument("order_id", type=click.IntRange(1), metavar="ORDER")
@click.option("--scores", required=True, help="Five scores 1..5: overall,quality,description,delivery,service.")
@click.option("--text", required=True, help="The review text (or @FILE); only its hash goes on chain.")
@click.option("--incentivised", is_flag=True, help="The buyer was rewarded for this review.")
@click.option("--line", default=0, show_default=True, type=click.IntRange(0))
@tx_command
def review_post(order_id: int, scores: str, text: str, incentivised: bool, line: int, tx: Tx) -> None:
    """Buyer: post a verified review of ORDER (signed with the order's review key)."""
    values = parse_scores(scores)
    content = parse_commitment(text, "--text")
    review_key, signature = _signed_review(tx, order_id, line, values, content, incentivised, 1)
    tx.send("reviews", "publish", order_id, line, values, content, incentivised, review_key, signature,
            describe=lambda r: f"review {r['return_value']} posted on order {order_id}")


@review.command("amend")
@click.argument("order_id", type=click.IntRange(1), metavar="ORDER")
@click.option("--scores", required=True, help="Five scores 1..5.")
@click.option("--text", required=True, help="The amended text (or @FILE).")
@click.option("--incentivised", is_flag=True)
@click.option("--line", default=0, show_default=True, type=click.IntRange(0))
@tx_command
def review_amend(order_id: int, scores: str, text: str, incentivised: bool, line: int, tx: Tx) -> None:
    """Buyer: amend the review of ORDER once (a new record linked to the first)."""
    values = parse_scores(scores)
    content = parse_commitment(text, "--text")
    _, signature = _signed_review(tx, order_id, line, values, content, incentivised, 2)
    tx.send("reviews", "amend", order_id, line, values, content, incentivised, signature,
            describe=lambda r: f"review of order {order_id} amended (review {r['return_value']})")


@review.command("reply")
@click.argument("review_id", type=click.IntRange(1), metavar="REVIEW")
@click.option("--text", required=True, help="The reply (or @FILE).")
@tx_command
def review_reply(review_id: int, text: str, tx: Tx) -> None:
    """Merchant: reply once to REVIEW."""
    tx.send("reviews", "reply", review_id, parse_commitment(text, "--text"),
            describe=lambda r: f"replied to review {review_id}")


@review.command("hide")
@click.argument("review_id", type=click.IntRange(1), metavar="REVIEW")
@click.option("--reason", required=True, help="Why (text, @FILE or 0x hash).")
@click.option("--unhide", is_flag=True, help="Show it again instead.")
@tx_command
def review_hide(review_id: int, reason: str, unhide: bool, tx: Tx) -> None:
    """PLATFORM: hide (or --unhide) REVIEW with a reason."""
    tx.send("reviews", "unhide" if unhide else "hide", review_id, parse_commitment(reason, "--reason"),
            describe=lambda r: f"review {review_id} {'shown' if unhide else 'hidden'}")


def _rating(r: dict | None) -> str:
    if not r or not r["count"]:
        return "no reviews"
    avg = [s / r["count"] for s in r["sums"]]
    return f"{r['count']} review(s), overall {avg[0]:.2f} (quality {avg[1]:.2f}, description {avg[2]:.2f}, " \
           f"delivery {avg[3]:.2f}, service {avg[4]:.2f})"


@review.command("list")
@click.option("--merchant", default=None, help="Only this merchant's reviews (and its rating).")
@click.option("--product", default=None, help="Only this product's reviews (and its rating).")
@click.option("--order", "order_id", default=None, type=click.IntRange(1), help="Only the review of this order.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, MAX_REVIEW_SCAN))
@query_command
def review_list(merchant: str | None, product: str | None, order_id: int | None, limit: int, q: Query) -> None:
    """List live reviews (newest versions), optionally for one merchant, product or order."""
    merchant_key = to_hex(q.account(merchant, "--merchant")) if merchant else None
    product_id = to_hex(parse_commitment(product, "--product")) if product else None
    rows: list[dict] = []
    for rid in range(1, MAX_REVIEW_SCAN + 1):
        rv = q.view("reviews", "get_review", rid)
        if rv is None or len(rows) >= limit:
            break
        if rv["superseded"] or (merchant_key and rv["merchant"] != merchant_key) or \
                (product_id and rv["product"] != product_id) or (order_id and rv["order"] != order_id):
            continue
        rows.append(rv)
    result: dict[str, Any] = {"reviews": rows}
    if merchant_key:
        result["merchant_rating"] = q.view("reviews", "merchant_rating", merchant_key)
    if product_id:
        result["product_rating"] = q.view("reviews", "product_rating", product_id)

    def text(r: dict) -> str:
        lines = [f"{v['id']:>5}  order {v['order']:<6} scores {','.join(map(str, v['scores']))}  "
                 f"v{v['version']}{'  HIDDEN' if v['hidden'] else ''}{'  incentivised' if v['incentivised'] else ''}"
                 f"{'  replied' if v['reply_hash'] != '0x' else ''}  text {v['content_hash'][:18]}…"
                 for v in r["reviews"]] or ["no reviews"]
        if "merchant_rating" in r:
            lines.append(f"merchant rating: {_rating(r['merchant_rating'])}")
        if "product_rating" in r:
            lines.append(f"product rating: {_rating(r['product_rating'])}")
        return "\n".join(lines)

    q.emit(result, text)


# --- ticket -------------------------------------------------------------------------------

@click.group()
def ticket() -> None:
    """Support tickets with response and resolution deadlines."""


@ticket.command("open")
@click.option("--order", "order_id", default=None, type=click.IntRange(1), help="The order it is about.")
@click.option("--unit", default=None, help="Or the unit it is about.")
@click.option("--message", required=True, help="The request (text, @FILE or 0x hash).")
@tx_command
def ticket_open(order_id: int | None, unit: str | None, message: str, tx: Tx) -> None:
    """Buyer or owner: open a ticket about an order or a unit."""
    if (order_id is None) == (unit is None):
        raise CliError("give exactly one of --order ORDER or --unit UNIT")
    tx.send("tickets", "open", order_id or 0, _unit(unit) if unit else b"", parse_commitment(message, "--message"),
            describe=lambda r: f"ticket {r['return_value']} opened")


@ticket.command("assign")
@ticket_argument
@click.argument("assignee")
@tx_command
def ticket_assign(ticket_id: int, assignee: str, tx: Tx) -> None:
    """Handler: assign TICKET to ASSIGNEE (itself or a service centre)."""
    tx.send("tickets", "assign", ticket_id, tx.account(assignee, "ASSIGNEE"),
            describe=lambda r: f"ticket {ticket_id} assigned")


@ticket.command("message")
@ticket_argument
@click.option("--message", required=True, help="The message (text, @FILE or 0x hash).")
@tx_command
def ticket_message(ticket_id: int, message: str, tx: Tx) -> None:
    """Owner or handler: post a message on TICKET."""
    tx.send("tickets", "post_message", ticket_id, parse_commitment(message, "--message"),
            describe=lambda r: f"message posted on ticket {ticket_id}")


@ticket.command("resolve")
@ticket_argument
@click.option("--resolution", required=True, help="The resolution (text, @FILE or 0x hash).")
@tx_command
def ticket_resolve(ticket_id: int, resolution: str, tx: Tx) -> None:
    """Handler: resolve TICKET."""
    tx.send("tickets", "resolve", ticket_id, parse_commitment(resolution, "--resolution"),
            describe=lambda r: f"ticket {ticket_id} resolved")


# Verbs that take just the ticket id: (name, method, help).
for _name, _method, _doc in [
    ("wait-customer", "wait_customer", "Handler: waiting for the customer's answer."),
    ("reopen", "reopen", "Owner: reopen a resolved TICKET."),
    ("close", "close", "Owner (or anyone after the close period): close TICKET."),
    ("escalate", "escalate", "Anyone after a missed deadline: escalate TICKET to the platform."),
]:
    id_transition(ticket, _name, "tickets", _method, ticket_argument, "ticket", _doc)


@ticket.command("link")
@ticket_argument
@click.option("--case", "case_id", default=None, type=click.IntRange(1), help="Link to this case.")
@click.option("--claim", "claim_id", default=None, type=click.IntRange(1), help="Or to this warranty claim.")
@tx_command
def ticket_link(ticket_id: int, case_id: int | None, claim_id: int | None, tx: Tx) -> None:
    """Link TICKET to a case or a warranty claim (both ways)."""
    if (case_id is None) == (claim_id is None):
        raise CliError("give exactly one of --case CASE or --claim CLAIM")
    method, target = ("link_case", case_id) if case_id else ("link_claim", claim_id)
    tx.send("tickets", method, ticket_id, target, describe=lambda r: f"ticket {ticket_id} linked")


@ticket.command("show")
@ticket_argument
@query_command
def ticket_show(ticket_id: int, q: Query) -> None:
    """Show a ticket."""
    found = q.view("tickets", "get_ticket", ticket_id)
    if found is None:
        raise CliError(f"no ticket {ticket_id}")
    q.emit(found)


# --- provenance -----------------------------------------------------------------------------

@click.group()
def provenance() -> None:
    """Provenance events (EPCIS-style) with custody: post, show, history."""


@provenance.command("post")
@click.option("--step", "biz_step", required=True, help="Business step, e.g. shipping, receiving, delivering, packing.")
@click.option("--item", "items", multiple=True, required=True, help="Item (unit text or 0x hash); repeatable.")
@click.option("--location", required=True, help="Business location id (text or 0x hash; never a home address).")
@click.option("--document", required=True, help="The full event document (text, @FILE or 0x hash).")
@click.option("--kind", default="OBJECT", show_default=True,
              type=click.Choice(["OBJECT", "AGGREGATION", "TRANSFORMATION", "TRANSACTION", "ASSOCIATION"]))
@click.option("--action", default="OBSERVE", show_default=True, type=click.Choice(["ADD", "OBSERVE", "DELETE"]))
@click.option("--disposition", default="in_progress", show_default=True)
@click.option("--order", "order_id", default=0, type=click.IntRange(0), help="Related order (its carrier's "
              "shipping/delivering events move the order).")
@click.option("--to", "destination", default=None, help="Next custodian (shipping) or receiver (delivering).")
@click.option("--corrects", default=0, type=click.IntRange(0), help="Id of the event this one corrects.")
@click.option("--time-ms", "event_time_ms", default=None, type=click.IntRange(0), help="Event time (default: now).")
@tx_command
def provenance_post(biz_step: str, items: tuple[str, ...], location: str, document: str, kind: str, action: str,
                    disposition: str, order_id: int, destination: str | None, corrects: int,
                    event_time_ms: int | None, tx: Tx) -> None:
    """Merchant or carrier: post a provenance event."""
    import time

    what = [_unit(i) for i in items]
    dest = tx.account(destination, "--to") if destination else b""
    when = int(time.time() * 1000) if event_time_ms is None else event_time_ms
    tx.send("provenance", "post", kind, action, what, biz_step, disposition, parse_commitment(location, "--location"),
            order_id, when, parse_commitment(document, "--document"), corrects, dest,
            describe=lambda r: f"provenance event {r['return_value']} posted")


@provenance.command("show")
@click.argument("event_id", type=click.IntRange(1), metavar="EVENT")
@query_command
def provenance_show(event_id: int, q: Query) -> None:
    """Show provenance event EVENT."""
    found = q.view("provenance", "get_event", event_id)
    if found is None:
        raise CliError(f"no provenance event {event_id}")
    q.emit(found)


@provenance.command("history")
@click.argument("item")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, MAX_HISTORY))
@query_command
def provenance_history(item: str, limit: int, q: Query) -> None:
    """Show ITEM's events in order and its current custodian."""
    iid = _unit(item)
    events = [q.view("provenance", "get_event", eid) for eid in q.view("provenance", "events_of", iid, limit)]
    holder = q.view("provenance", "custodian_of", iid)
    result = {"item": to_hex(iid), "custodian": holder, "events": events}
    q.emit(result, lambda r: "\n".join(
        [f"item {r['item']}: custodian {q.label(r['custodian'])}"] +
        [f"{e['id']:>5}  height {e['height']:<8} {e['biz_step']:<12} {e['action']:<8} by {q.label(e['poster'])}"
         f"{'  order ' + str(e['order']) if e['order'] else ''}" for e in r["events"]]))


def all_groups() -> list[Any]:
    return [warranty, review, ticket, provenance]


