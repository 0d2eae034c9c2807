"""Warranty passports and service history (after Arianee's product passports).

A unit is the hash of (brand, serial), computed off chain so the serial never appears.
Its brand's merchant registers it; anyone may activate it from a line of a COMPLETED
or CLOSED order of that merchant for that product (pull: this contract reads
orders.get_order), at most as many units per line as the line's quantity not returned
(none once the line was refunded in full),
which makes the buyer the owner and sets warranty end = delivery + the warranty period
of that line's terms. Every time here is unix seconds of certified block time
(``ctx.timestamp_ms // 1000``): "under warranty" is derived from it, never stored. The
owner offers a transfer with the hash of a one-time claim code and an expiry; the new
owner claims by commit-reveal, so a code seen in a pending claim is no use to anyone
else: first ``commit_claim`` with sha256(CLAIM_DOMAIN | unit | claimant | code), which
hides the code and binds it to the claimant, then, in a later block, ``claim_transfer``
with the code. The new owner sees the whole history, which no one can rewrite:
service records are append-only, contests are stored beside them, corrections are new
AMEND records naming the original. Claims: OPEN -> ACCEPTED | REJECTED -> ESCALATED
-> FULFILLED -> CLOSED, escalating when the brand misses its reply deadline. LOST,
STOLEN and RECALLED block transfer, not service.
"""

GENESIS_SENDER = b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
#: Longest any warranty setting may be (3660 days, in seconds).
MAX_SECONDS = 316224000
#: Domain tag of a claim commitment (commit-reveal of a transfer's claim code).
CLAIM_DOMAIN = b"shopchain/warranty-claim/v1|"
#: Most units one order line may activate is its quantity not returned; most flags per unit is three.
MAX_FLAGS = 3


class Passport(Record):
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


class ServiceRecord(Record):
    seq: int
    kind: str
    by: bytes
    data_hash: bytes
    under_warranty: bool
    amends: int
    height: int
    at: int


class Claim(Record):
    id: int
    unit: bytes
    owner: bytes
    state: str
    issue_hash: bytes
    reply_by: int
    remedy: str


sealed: bool
contest_seconds: int
claim_reply_seconds: int
passports: Map[bytes, Passport]
log: Map[tuple[bytes, int], ServiceRecord]
contests: Map[tuple[bytes, int], bytes]
service_auth: Map[tuple[bytes, bytes], bool]
#: (order, line) -> units of that line activated so far.
line_units: Map[tuple[int, int], int]
recalls: Map[tuple[bytes, bytes], bytes]
claims: Map[int, Claim]
next_claim: int
#: (unit, claimant) -> [commitment, height it was made at]: one pending commitment each.
claim_commits: Map[tuple[bytes, bytes], list[any]]


@public
def configure(contest_seconds: int, claim_reply_seconds: int) -> None:
    """Genesis sets these once (before seal); afterwards only governance changes them (gov_configure)."""
    require(ctx.sender == GENESIS_SENDER, "only genesis may configure; later changes are governance proposals")
    require(not self.sealed, "genesis is sealed")
    _apply_settings(contest_seconds, claim_reply_seconds)


@public
@requires("governance")
def gov_configure(changes: dict) -> None:
    """Settings changed by a passed governance proposal: named keys, the others keep their values."""
    for k in changes:
        require(k in ["contest_seconds", "claim_reply_seconds"],
                "unknown warranty setting " + k + "; expected one of contest_seconds, claim_reply_seconds")
    contest_seconds = changes.get("contest_seconds", self.contest_seconds)
    claim_reply_seconds = changes.get("claim_reply_seconds", self.claim_reply_seconds)
    _apply_settings(contest_seconds, claim_reply_seconds)
    emit(SettingsChanged, changes=changes)


def _apply_settings(contest_seconds, claim_reply_seconds) -> None:
    for d in [contest_seconds, claim_reply_seconds]:
        require(d >= 60 and d <= MAX_SECONDS, "warranty periods must be 60..316224000 seconds (a minute to 3660 days), found " + str(d))
    self.contest_seconds = contest_seconds
    self.claim_reply_seconds = claim_reply_seconds


@public
def seal() -> None:
    require(ctx.sender == GENESIS_SENDER and not self.sealed, "only genesis may seal")
    self.sealed = True


def _now() -> int:
    """The block's certified time in unix seconds: what every deadline is compared with."""
    return ctx.timestamp_ms // 1000


def _load(unit) -> Passport:
    p = self.passports.get(unit)
    require(p != None, "no passport for this unit")
    return p


def _recalled(p) -> bool:
    return (p.brand, p.product) in self.recalls


def _active_sender() -> None:
    require(call("identity", "is_active", ctx.sender), "sender is not an active registered account")


def _may_service(p, who) -> bool:
    if who == p.brand:
        return True
    return self.service_auth.get((p.brand, who), False) and call("identity", "has_role", who, "SERVICE_CENTER")


@public
def register_unit(unit: bytes, product: bytes) -> None:
    require(call("identity", "has_role", ctx.sender, "MERCHANT"), "only a brand's MERCHANT registers units")
    require(len(unit) == 32 and len(product) == 32, "unit and product ids are 32-byte hashes")
    require(not (unit in self.passports), "unit already has a passport (one active passport per unit)")
    self.passports[unit] = Passport(unit=unit, brand=ctx.sender, product=product, owner=b"", order=0, line=0,
                                    activated=False, warranty_end=0, void=False, flags=[], log_count=0,
                                    claim_hash=b"", offer_expiry=0)
    emit(UnitRegistered, unit=unit, brand=ctx.sender, product=product)


@public
def authorize_service(center: bytes, allowed: bool) -> None:
    require(call("identity", "has_role", ctx.sender, "MERCHANT"), "only a brand's MERCHANT authorises service centres")
    require(call("identity", "has_role", center, "SERVICE_CENTER"), "the centre must hold SERVICE_CENTER")
    self.service_auth[(ctx.sender, center)] = allowed


@public
def activate(unit: bytes, order_id: int, line: int) -> None:
    """Anyone may activate: the order line itself proves the purchase, and bounds how many units it covers."""
    p = _load(unit)
    require(not p.activated, "passport already activated")
    o = call("orders", "get_order", order_id)
    require(o != None, "no order " + str(order_id))
    require(o["state"] == "COMPLETED" or o["state"] == "CLOSED", "order is " + o["state"] + ", expected COMPLETED or CLOSED")
    require(o["merchant"] == p.brand, "the order's merchant is not the unit's brand")
    lines = o["lines"]
    require(line >= 0 and line < len(lines), "order " + str(order_id) + " has lines 0.." + str(len(lines) - 1)
            + ", found " + str(line))
    ln = lines[line]
    require(ln["product"] == p.product, "line " + str(line) + " of order " + str(order_id) + " is for another product")
    used = self.line_units.get((order_id, line), 0)
    kept = ln["quantity"] - ln["returned"]
    if ln["amount"] > 0 and ln["refunded"] == ln["amount"]:
        kept = 0                          # refunded in full (e.g. before shipment): the buyer kept no unit of it
    where = "line " + str(line) + " of order " + str(order_id)
    require(kept > 0, where + " covers no units: every one was returned or the line was refunded in full")
    require(used < kept, where + " covers " + str(kept) + " units and every one is already activated")
    self.line_units[(order_id, line)] = used + 1
    t = call("orders", "get_terms_set", ln["terms_hash"])
    p.activated = True
    p.owner = o["buyer"]
    p.order = order_id
    p.line = line
    p.warranty_end = o["delivered_at"] + t["warranty_seconds"]
    self.passports[unit] = p
    emit(WarrantyActivated, unit=unit, order=order_id, line=line, warranty_end=p.warranty_end)


@public
def extend_warranty(unit: bytes, new_end: int) -> None:
    _active_sender()
    p = _load(unit)
    require(ctx.sender == p.brand, "only the brand extends a warranty")
    require(p.activated and not p.void, "warranty is not active")
    require(new_end > p.warranty_end, "warranty end only grows: " + str(p.warranty_end) + " -> " + str(new_end))
    p.warranty_end = new_end
    self.passports[unit] = p
    emit(WarrantyExtended, unit=unit, warranty_end=new_end)


@public
def void_warranty(unit: bytes, reason_hash: bytes) -> None:
    _active_sender()
    p = _load(unit)
    require(ctx.sender == p.brand, "only the brand voids a warranty")
    require(not p.void, "warranty already void")
    p.void = True
    self.passports[unit] = p
    emit(WarrantyVoided, unit=unit, reason_hash=reason_hash)


@public
def offer_transfer(unit: bytes, claim_hash: bytes, expiry: int) -> None:
    _active_sender()
    p = _load(unit)
    require(p.activated and ctx.sender == p.owner, "only the owner offers a transfer")
    require(len(p.flags) == 0 and not _recalled(p), "a LOST, STOLEN or RECALLED unit cannot be transferred")
    require(len(claim_hash) == 32, "claim hash is 32 bytes")
    require(expiry > _now(), "offer expiry (unix seconds) must be after the block time " + str(_now()) + ", found " + str(expiry))
    p.claim_hash = claim_hash
    p.offer_expiry = expiry
    self.passports[unit] = p
    emit(TransferOffered, unit=unit, expiry=expiry)


def claim_commitment(unit, claimant, code) -> bytes:
    return sha256(CLAIM_DOMAIN + unit + b"|" + claimant + b"|" + code)


@public
def commit_claim(unit: bytes, commitment: bytes) -> None:
    """Step one of taking a unit over: commit to the code without showing it (claim_commitment)."""
    p = _load(unit)
    require(call("identity", "is_active", ctx.sender), "the new owner must be an active account")
    require(p.claim_hash != b"", "no transfer is on offer")
    require(len(commitment) == 32, "the claim commitment is 32 bytes")
    self.claim_commits[(unit, ctx.sender)] = [commitment, ctx.height]
    emit(ClaimCommitted, unit=unit, claimant=ctx.sender)


@public
def claim_transfer(unit: bytes, code: bytes) -> None:
    """Step two, in a later block than the commitment: reveal the code."""
    p = _load(unit)
    require(call("identity", "is_active", ctx.sender), "the new owner must be an active account")
    require(p.claim_hash != b"", "no transfer is on offer")
    committed = self.claim_commits.get((unit, ctx.sender))
    require(committed != None, "commit to the claim code first (commit_claim), then reveal it in a later block")
    require(committed[1] < ctx.height, "reveal the claim code in a later block than its commitment (made at height "
            + str(committed[1]) + ")")
    require(committed[0] == claim_commitment(unit, ctx.sender, code), "the code does not match this account's commitment")
    del self.claim_commits[(unit, ctx.sender)]
    require(_now() <= p.offer_expiry, "the offer expired at unix time " + str(p.offer_expiry))
    require(sha256(code) == p.claim_hash, "claim code does not match")
    require(len(p.flags) == 0 and not _recalled(p), "a LOST, STOLEN or RECALLED unit cannot be transferred")
    require(ctx.sender != p.owner, "the owner cannot claim its own unit")
    old = p.owner
    p.owner = ctx.sender
    p.claim_hash = b""
    p.offer_expiry = 0
    self.passports[unit] = p
    emit(Transferred, unit=unit, sender=old, to=ctx.sender)


@public
def set_flag(unit: bytes, flag: str, on: bool) -> None:
    _active_sender()
    p = _load(unit)
    require(flag == "LOST" or flag == "STOLEN", "owners set LOST or STOLEN; recalls come from the brand")
    require(ctx.sender == p.owner and p.activated, "only the owner flags a unit")
    if on:
        require(not (flag in p.flags), "flag already set")
        p.flags.append(flag)
    else:
        kept = []
        for f in p.flags:
            if f != flag:
                kept.append(f)
        p.flags = kept
    self.passports[unit] = p
    emit(FlagSet, unit=unit, flag=flag, on=on)


@public
def issue_recall(product: bytes, reason_hash: bytes) -> None:
    require(call("identity", "has_role", ctx.sender, "MERCHANT"), "only a brand's MERCHANT issues recalls")
    require(not ((ctx.sender, product) in self.recalls), "product already recalled")
    self.recalls[(ctx.sender, product)] = reason_hash
    emit(RecallIssued, brand=ctx.sender, product=product, reason_hash=reason_hash)


@public
def record_service(unit: bytes, kind: str, data_hash: bytes, under_warranty: bool, amends: int) -> int:
    _active_sender()
    p = _load(unit)
    require(_may_service(p, ctx.sender), "only the brand or a service centre it authorised records service")
    require(kind in ["INSPECT", "REPAIR", "PART", "UNIT_SWAP", "REFURBISH", "AMEND"], "unknown service kind " + kind)
    require(len(data_hash) == 32, "data hash is 32 bytes")
    if kind == "AMEND":
        require(amends >= 1 and amends <= p.log_count, "an AMEND names an existing record 1.." + str(p.log_count))
    else:
        require(amends == 0, "only AMEND records name another record")
    if under_warranty:
        require(p.activated and not p.void and _now() <= p.warranty_end, "unit is not under warranty")
    seq = p.log_count + 1
    p.log_count = seq
    self.passports[unit] = p
    self.log[(unit, seq)] = ServiceRecord(seq=seq, kind=kind, by=ctx.sender, data_hash=data_hash,
                                          under_warranty=under_warranty, amends=amends, height=ctx.height,
                                          at=_now())
    emit(ServiceRecorded, unit=unit, seq=seq, kind=kind, data_hash=data_hash, amends=amends)
    return seq


@public
def contest(unit: bytes, seq: int, reason_hash: bytes) -> None:
    _active_sender()
    p = _load(unit)
    require(ctx.sender == p.owner, "only the owner contests a service record")
    r = self.log.get((unit, seq))
    require(r != None, "no service record " + str(seq))
    require(_now() <= r.at + self.contest_seconds, "the contest window closed at unix time " + str(r.at + self.contest_seconds) + "; silence acknowledged")
    require(not ((unit, seq) in self.contests), "record already contested")
    self.contests[(unit, seq)] = reason_hash
    emit(ServiceContested, unit=unit, seq=seq, reason_hash=reason_hash)


# ---- claims --------------------------------------------------------------------------

def _claim(claim_id) -> Claim:
    c = self.claims.get(claim_id)
    require(c != None, "no claim " + str(claim_id))
    return c


@public
def open_claim(unit: bytes, issue_hash: bytes) -> int:
    _active_sender()
    p = _load(unit)
    require(p.activated and ctx.sender == p.owner, "only the owner opens a warranty claim")
    require(not p.void and _now() <= p.warranty_end, "the warranty ended at unix time " + str(p.warranty_end))
    cid = self.next_claim + 1
    self.next_claim = cid
    self.claims[cid] = Claim(id=cid, unit=unit, owner=ctx.sender, state="OPEN", issue_hash=issue_hash,
                             reply_by=_now() + self.claim_reply_seconds, remedy="")
    emit(ClaimOpened, claim=cid, unit=unit)
    return cid


@public
def decide_claim(claim_id: int, accept: bool) -> None:
    _active_sender()
    c = _claim(claim_id)
    p = _load(c.unit)
    if c.state == "ESCALATED":
        require(call("identity", "has_role", ctx.sender, "PLATFORM"), "an escalated claim is decided by PLATFORM")
    else:
        require(c.state == "OPEN", "claim is " + c.state + ", expected OPEN")
        require(_may_service(p, ctx.sender), "only the brand or its service centre decides")
        require(_now() <= c.reply_by, "the reply deadline passed at unix time " + str(c.reply_by) + "; the claim escalates")
    c.state = "ACCEPTED" if accept else "REJECTED"
    self.claims[claim_id] = c
    emit(ClaimDecided, claim=claim_id, accepted=accept)


@public
def escalate_claim(claim_id: int) -> None:
    c = _claim(claim_id)
    if c.state == "REJECTED":
        require(ctx.sender == c.owner, "only the owner escalates a rejection")
    else:
        require(c.state == "OPEN" and _now() > c.reply_by, "only a rejected claim or a missed reply deadline escalates")
        require(call("identity", "is_active", ctx.sender), "sender is not an active account")
    c.state = "ESCALATED"
    self.claims[claim_id] = c
    emit(ClaimEscalated, claim=claim_id)


@public
def fulfil_claim(claim_id: int, remedy: str, record_hash: bytes) -> None:
    _active_sender()
    c = _claim(claim_id)
    p = _load(c.unit)
    require(c.state == "ACCEPTED", "claim is " + c.state + ", expected ACCEPTED")
    require(_may_service(p, ctx.sender), "only the brand or its service centre fulfils")
    require(remedy in ["REPAIR", "REPLACE", "REFUND"], "remedies are REPAIR, REPLACE, REFUND")
    c.state = "FULFILLED"
    c.remedy = remedy
    self.claims[claim_id] = c
    emit(ClaimFulfilled, claim=claim_id, remedy=remedy, record_hash=record_hash)


@public
def close_claim(claim_id: int) -> None:
    _active_sender()
    c = _claim(claim_id)
    require(ctx.sender == c.owner, "only the owner closes a claim")
    require(c.state == "FULFILLED" or c.state == "REJECTED", "claim is " + c.state + ", expected FULFILLED or REJECTED")
    c.state = "CLOSED"
    self.claims[claim_id] = c
    emit(ClaimClosed, claim=claim_id)


@public
@requires("tickets")
def link_ticket(claim_id: int, ticket_id: int, owner: bytes) -> None:
    c = _claim(claim_id)
    require(owner == c.owner, "the ticket's owner is not the claim's owner")
    emit(ClaimLinked, claim=claim_id, ticket=ticket_id)


# ---- views -------------------------------------------------------------------------

@view
def get_passport(unit: bytes) -> any:
    return self.passports.get(unit)


@view
def under_warranty(unit: bytes) -> bool:
    p = self.passports.get(unit)
    if p == None:
        return False
    return p.activated and not p.void and _now() <= p.warranty_end


@view
def is_recalled(unit: bytes) -> bool:
    p = self.passports.get(unit)
    if p == None:
        return False
    return _recalled(p)


@view
def service_log(unit: bytes, limit: int) -> list[any]:
    out = []
    for kv in self.log.items((unit,), limit):
        r = kv[1]
        out.append(r)
    return out


@view
def is_contested(unit: bytes, seq: int) -> bool:
    return (unit, seq) in self.contests


@view
def get_claim(claim_id: int) -> any:
    return self.claims.get(claim_id)
