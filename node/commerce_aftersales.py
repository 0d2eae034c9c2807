"""Typed calls for what happens after the sale: warranty passports, support tickets, provenance.

How it works: as in node.commerce_orders, each function checks its typed inputs and
returns a ``ContractCall`` (node.commerce_calls) for ``Commerce.send`` / ``Commerce.read``;
argument order and limits are those of contracts_vm/system/warranty.sc.py, tickets.sc.py
and provenance.sc.py. A warranty transfer needs a secret handled on the client, so its
bytes are built here and no application re-derives them: the owner offers with the hash
of a one-time code (``offer_transfer``), and the new owner takes the unit by
commit-reveal: ``commit_claim`` commits ``claim_commitment(unit, claimant, code)``, which
hides the code and binds it to the claimant, and ``claim_transfer`` reveals the code in a
later block, so a code seen in a pending transaction is of no use to anyone else.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from contracts_vm.system import warranty_claim_commitment
from ledger.crypto import sha256
from ledger.errors import ValidationError
from node.commerce_calls import (ContractCall, as_bytes, as_int, as_ints, bytes32, bytes32_or_empty, choice, decode_as,
                                 flag, hashes, integer, nothing, order_id, record_or_none, records, some_bytes, text,
                                 view, write)

#: Most item hashes in one provenance event.
MAX_WHAT = 64


class ServiceKind(str, enum.Enum):
    INSPECT = "INSPECT"
    REPAIR = "REPAIR"
    PART = "PART"
    UNIT_SWAP = "UNIT_SWAP"
    REFURBISH = "REFURBISH"
    AMEND = "AMEND"


class ClaimState(str, enum.Enum):
    OPEN = "OPEN"
    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"
    ESCALATED = "ESCALATED"
    FULFILLED = "FULFILLED"
    CLOSED = "CLOSED"


class Remedy(str, enum.Enum):
    REPAIR = "REPAIR"
    REPLACE = "REPLACE"
    REFUND = "REFUND"


class UnitFlag(str, enum.Enum):
    """What an owner may flag; RECALLED comes from the brand (``issue_recall``)."""
    LOST = "LOST"
    STOLEN = "STOLEN"


class TicketState(str, enum.Enum):
    OPEN = "OPEN"
    ASSIGNED = "ASSIGNED"
    WAITING_CUSTOMER = "WAITING_CUSTOMER"
    RESOLVED = "RESOLVED"
    CLOSED = "CLOSED"


class EventKind(str, enum.Enum):
    OBJECT = "OBJECT"
    AGGREGATION = "AGGREGATION"
    TRANSFORMATION = "TRANSFORMATION"
    TRANSACTION = "TRANSACTION"
    ASSOCIATION = "ASSOCIATION"


class EventAction(str, enum.Enum):
    ADD = "ADD"
    OBSERVE = "OBSERVE"
    DELETE = "DELETE"


@dataclass(frozen=True)
class Passport:
    """``warranty.get_passport``; ``flags`` are the owner's LOST / STOLEN (free text on chain)."""

    unit: bytes
    brand: bytes
    product: bytes
    owner: bytes
    order: int
    line: int
    activated: bool
    warranty_end: int
    void: bool
    flags: list[str]
    log_count: int
    claim_hash: bytes
    offer_expiry: int


@dataclass(frozen=True)
class ServiceRecord:
    seq: int
    kind: ServiceKind
    by: bytes
    data_hash: bytes
    under_warranty: bool
    amends: int
    height: int
    at: int


@dataclass(frozen=True)
class Claim:
    id: int
    unit: bytes
    owner: bytes
    state: ClaimState
    issue_hash: bytes
    reply_by: int
    remedy: str


@dataclass(frozen=True)
class Ticket:
    id: int
    owner: bytes
    handler: bytes
    assignee: bytes
    order: int
    unit: bytes
    state: TicketState
    responded: bool
    first_response_by: int
    resolve_by: int
    close_after: int
    escalated: bool
    case: int
    claim: int


@dataclass(frozen=True)
class ProvenanceEvent:
    """``provenance.get_event``: an EPCIS-style record (``poster`` and ``height`` set by the chain)."""

    id: int
    kind: EventKind
    action: EventAction
    what: list[bytes]
    biz_step: str
    disposition: str
    location: bytes
    order: int
    event_time_ms: int
    height: int
    data_hash: bytes
    corrects: int
    poster: bytes
    destination: bytes


def unit_id(brand_serial: str) -> bytes:
    """The id of a unit named by text (as the CLI does: SHA-256 of e.g. "acme:SN-0001"), so the
    serial never appears on chain; put the brand in the text so brands never collide."""
    return sha256(text(brand_serial, "unit name", 1, 256).encode("utf-8"))


def _claim_id(claim: int) -> int:
    return integer(claim, "claim_id", 1)


def _unit(unit: bytes) -> bytes:
    return bytes32(unit, "unit")


# ---- warranty ----------------------------------------------------------------------

def register_unit(unit: bytes, product: bytes) -> ContractCall[None]:
    """warranty.register_unit, by the brand's merchant: one passport per unit."""
    return write("warranty", "register_unit", _unit(unit), bytes32(product, "product"), decode=nothing)


def authorize_service(center: bytes, allowed: bool = True) -> ContractCall[None]:
    return write("warranty", "authorize_service", bytes32(center, "center"), flag(allowed, "allowed"), decode=nothing)


def activate_warranty(unit: bytes, order: int, line: int = 0) -> ContractCall[None]:
    """warranty.activate, by anyone: the COMPLETED order line proves the purchase; the buyer becomes owner."""
    return write("warranty", "activate", _unit(unit), order_id(order), integer(line, "line", 0, 31), decode=nothing)


def extend_warranty(unit: bytes, new_end: int) -> ContractCall[None]:
    return write("warranty", "extend_warranty", _unit(unit), integer(new_end, "new_end (unix seconds)", 1),
                 decode=nothing)


def void_warranty(unit: bytes, reason_hash: bytes) -> ContractCall[None]:
    return write("warranty", "void_warranty", _unit(unit), bytes32(reason_hash, "reason_hash"), decode=nothing)


def offer_transfer(unit: bytes, code: bytes, expiry: int) -> ContractCall[None]:
    """warranty.offer_transfer, by the owner: the chain keeps sha256(code); hand the code to the new owner."""
    return write("warranty", "offer_transfer", _unit(unit), sha256(_code(code)),
                 integer(expiry, "expiry (unix seconds)", 1), decode=nothing)


def _code(code: bytes) -> bytes:
    raw = some_bytes(code, "claim code", 256)
    if len(raw) < 16:
        raise ValidationError(f"a claim code must be at least 16 bytes so its hash cannot be guessed, found {len(raw)}")
    return raw


def claim_commitment(unit: bytes, claimant: bytes, code: bytes) -> bytes:
    """What ``commit_claim`` commits: binds the code to the claimant without showing it."""
    return warranty_claim_commitment(_unit(unit), bytes32(claimant, "claimant"), _code(code))


def commit_claim(unit: bytes, claimant: bytes, code: bytes) -> ContractCall[None]:
    """Step one of taking a unit over (sent by ``claimant``); reveal with ``claim_transfer`` in a later block."""
    return write("warranty", "commit_claim", _unit(unit), claim_commitment(unit, claimant, code), decode=nothing)


def claim_transfer(unit: bytes, code: bytes) -> ContractCall[None]:
    return write("warranty", "claim_transfer", _unit(unit), _code(code), decode=nothing)


def set_flag(unit: bytes, unit_flag: UnitFlag | str, on: bool = True) -> ContractCall[None]:
    return write("warranty", "set_flag", _unit(unit), choice(unit_flag, UnitFlag, "flag").value, flag(on, "on"),
                 decode=nothing)


def issue_recall(product: bytes, reason_hash: bytes) -> ContractCall[None]:
    return write("warranty", "issue_recall", bytes32(product, "product"), bytes32(reason_hash, "reason_hash"),
                 decode=nothing)


def record_service(unit: bytes, kind: ServiceKind | str, data_hash: bytes, under_warranty: bool = False,
                   amends: int = 0) -> ContractCall[int]:
    """warranty.record_service, by the brand or a centre it authorised; the value is the record's seq.
    Only an AMEND names the record it corrects (``amends`` >= 1); the log is never rewritten."""
    kind = choice(kind, ServiceKind, "service kind")
    integer(amends, "amends", 0)
    if (kind is ServiceKind.AMEND) != (amends >= 1):
        raise ValidationError(f"only an AMEND record names another record (amends >= 1), found {kind.value} "
                              f"with amends {amends}")
    return write("warranty", "record_service", _unit(unit), kind.value, bytes32(data_hash, "data_hash"),
                 flag(under_warranty, "under_warranty"), amends, decode=as_int)


def contest_service(unit: bytes, seq: int, reason_hash: bytes) -> ContractCall[None]:
    return write("warranty", "contest", _unit(unit), integer(seq, "seq", 1), bytes32(reason_hash, "reason_hash"),
                 decode=nothing)


def open_claim(unit: bytes, issue_hash: bytes) -> ContractCall[int]:
    """warranty.open_claim, by the owner before the warranty ends; the value is the claim id."""
    return write("warranty", "open_claim", _unit(unit), bytes32(issue_hash, "issue_hash"), decode=as_int)


def decide_claim(claim: int, accept: bool) -> ContractCall[None]:
    return write("warranty", "decide_claim", _claim_id(claim), flag(accept, "accept"), decode=nothing)


def escalate_claim(claim: int) -> ContractCall[None]:
    return write("warranty", "escalate_claim", _claim_id(claim), decode=nothing)


def fulfil_claim(claim: int, remedy: Remedy | str, record_hash: bytes) -> ContractCall[None]:
    return write("warranty", "fulfil_claim", _claim_id(claim), choice(remedy, Remedy, "remedy").value,
                 bytes32(record_hash, "record_hash"), decode=nothing)


def close_claim(claim: int) -> ContractCall[None]:
    return write("warranty", "close_claim", _claim_id(claim), decode=nothing)


def get_passport(unit: bytes) -> ContractCall[Passport | None]:
    return view("warranty", "get_passport", _unit(unit), decode=record_or_none(Passport))


def under_warranty(unit: bytes) -> ContractCall[bool]:
    return view("warranty", "under_warranty", _unit(unit), decode=lambda v: decode_as(bool, v, "under_warranty"))


def is_recalled(unit: bytes) -> ContractCall[bool]:
    return view("warranty", "is_recalled", _unit(unit), decode=lambda v: decode_as(bool, v, "is_recalled"))


def service_log(unit: bytes, limit: int = 100) -> ContractCall[list[ServiceRecord]]:
    return view("warranty", "service_log", _unit(unit), integer(limit, "limit", 1, 1000), decode=records(ServiceRecord))


def is_contested(unit: bytes, seq: int) -> ContractCall[bool]:
    return view("warranty", "is_contested", _unit(unit), integer(seq, "seq", 1),
                decode=lambda v: decode_as(bool, v, "is_contested"))


def get_claim(claim: int) -> ContractCall[Claim | None]:
    return view("warranty", "get_claim", _claim_id(claim), decode=record_or_none(Claim))


# ---- support tickets ---------------------------------------------------------------

def _ticket_id(ticket: int) -> int:
    return integer(ticket, "ticket_id", 1)


def open_ticket(message_hash: bytes, order: int = 0, unit: bytes | None = None) -> ContractCall[int]:
    """tickets.open about an order (its buyer) or a unit (its owner), exactly one of them;
    the value is the ticket id. Messages travel off chain; the chain keeps their hashes."""
    if (order == 0) == (unit is None or unit == b""):
        raise ValidationError(f"a ticket is about an order or a unit, exactly one; found order {order!r} "
                              f"and unit {unit!r:.20}")
    oid = 0 if order == 0 else order_id(order)
    return write("tickets", "open", oid, bytes32_or_empty(unit, "unit"), bytes32(message_hash, "message_hash"),
                 decode=as_int)


def assign_ticket(ticket: int, assignee: bytes) -> ContractCall[None]:
    return write("tickets", "assign", _ticket_id(ticket), bytes32(assignee, "assignee"), decode=nothing)


def post_message(ticket: int, message_hash: bytes) -> ContractCall[None]:
    return write("tickets", "post_message", _ticket_id(ticket), bytes32(message_hash, "message_hash"), decode=nothing)


def wait_customer(ticket: int) -> ContractCall[None]:
    return write("tickets", "wait_customer", _ticket_id(ticket), decode=nothing)


def resolve_ticket(ticket: int, resolution_hash: bytes) -> ContractCall[None]:
    return write("tickets", "resolve", _ticket_id(ticket), bytes32(resolution_hash, "resolution_hash"), decode=nothing)


def reopen_ticket(ticket: int) -> ContractCall[None]:
    return write("tickets", "reopen", _ticket_id(ticket), decode=nothing)


def close_ticket(ticket: int) -> ContractCall[None]:
    return write("tickets", "close", _ticket_id(ticket), decode=nothing)


def escalate_ticket(ticket: int) -> ContractCall[None]:
    return write("tickets", "escalate", _ticket_id(ticket), decode=nothing)


def link_case(ticket: int, case: int) -> ContractCall[None]:
    return write("tickets", "link_case", _ticket_id(ticket), integer(case, "case_id", 1), decode=nothing)


def link_claim(ticket: int, claim: int) -> ContractCall[None]:
    return write("tickets", "link_claim", _ticket_id(ticket), _claim_id(claim), decode=nothing)


def get_ticket(ticket: int) -> ContractCall[Ticket | None]:
    return view("tickets", "get_ticket", _ticket_id(ticket), decode=record_or_none(Ticket))


# ---- provenance --------------------------------------------------------------------

def post_event(kind: EventKind | str, action: EventAction | str, what: Sequence[bytes], biz_step: str,
               disposition: str, location: bytes, data_hash: bytes, event_time_ms: int, order: int = 0,
               corrects: int = 0, destination: bytes | None = None) -> ContractCall[int]:
    """provenance.post, by a merchant or carrier; the value is the event id. A "shipping" or
    "delivering" step names the next custodian (``destination``); a carrier's shipping or
    delivering event for its order also moves the order (or its return)."""
    step = text(biz_step, "biz_step", 0, 64)
    if step in ("shipping", "delivering") and destination in (None, b""):
        raise ValidationError(f"a {step} event names the next custodian (destination), found none")
    return write("provenance", "post", choice(kind, EventKind, "event kind").value,
                 choice(action, EventAction, "event action").value, hashes(what, "what", 1, MAX_WHAT), step,
                 text(disposition, "disposition", 0, 64), bytes32(location, "location"),
                 0 if order == 0 else order_id(order), integer(event_time_ms, "event_time_ms", 0),
                 bytes32(data_hash, "data_hash"), integer(corrects, "corrects", 0),
                 bytes32_or_empty(destination, "destination"), decode=as_int)


def get_event(event: int) -> ContractCall[ProvenanceEvent | None]:
    return view("provenance", "get_event", integer(event, "event_id", 1), decode=record_or_none(ProvenanceEvent))


def custodian_of(item: bytes) -> ContractCall[bytes | None]:
    return view("provenance", "custodian_of", bytes32(item, "item"), decode=lambda v: as_bytes(v) or None)


def events_of(item: bytes, limit: int = 100) -> ContractCall[list[int]]:
    return view("provenance", "events_of", bytes32(item, "item"), integer(limit, "limit", 1, 1000), decode=as_ints)


#: The public names (tests/node/test_client_commerce.py checks that every helper, record and Enum is here).
__all__ = ["Claim", "ClaimState", "EventAction", "EventKind", "MAX_WHAT", "Passport", "ProvenanceEvent", "Remedy",
           "ServiceKind", "ServiceRecord", "Ticket", "TicketState", "UnitFlag", "activate_warranty",
           "assign_ticket", "authorize_service", "claim_commitment", "claim_transfer", "close_claim",
           "close_ticket", "commit_claim", "contest_service", "custodian_of", "decide_claim", "escalate_claim",
           "escalate_ticket", "events_of", "extend_warranty", "fulfil_claim", "get_claim", "get_event",
           "get_passport", "get_ticket", "is_contested", "is_recalled", "issue_recall", "link_case", "link_claim",
           "offer_transfer", "open_claim", "open_ticket", "post_event", "post_message", "record_service",
           "register_unit", "reopen_ticket", "resolve_ticket", "service_log", "set_flag", "under_warranty",
           "unit_id", "void_warranty", "wait_customer"]
