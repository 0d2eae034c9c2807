"""Token and escrow ledger: balances per account, escrow sub-accounts per (contract, key).

Genesis credits opening balances (genesis_credit, before seal). A TREASURY account
mints to any active account and burns from its own balance; that is the only way the
supply changes (E1). Contracts installed with capability "escrow" lock funds into an
escrow sub-account named (their own contract name, key) and release them out of it;
an escrow never goes below zero (E2). The order contract keeps the per-order refund
accounting (E3) and empties the escrow when an order reaches a terminal state (E4).
"""

GENESIS_SENDER = b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
#: Largest escrow key (an order id or a bond name).
MAX_ESCROW_KEY = 96

sealed: bool
supply: int
escrow_total: int
balances: Map[bytes, int]
escrows: Map[tuple[str, str], int]


def _active(who) -> bool:
    return call("identity", "is_active", who)


@public
def genesis_credit(to: bytes, amount: int) -> None:
    require(ctx.sender == GENESIS_SENDER and not self.sealed, "only genesis may credit opening balances")
    require(amount >= 0, "amount must not be negative")
    self.supply += amount
    self.balances[to] = self.balances.get(to, 0) + amount
    emit(Minted, to=to, amount=amount)


@public
def seal() -> None:
    require(ctx.sender == GENESIS_SENDER and not self.sealed, "only genesis may seal")
    self.sealed = True


@public
def mint(to: bytes, amount: int) -> None:
    require(call("identity", "has_role", ctx.sender, "TREASURY"), "only TREASURY may mint")
    require(amount > 0, "amount must be positive, found " + str(amount))
    require(_active(to), "recipient is not an active account")
    self.supply += amount
    self.balances[to] = self.balances.get(to, 0) + amount
    emit(Minted, to=to, amount=amount)


@public
def burn(amount: int) -> None:
    require(call("identity", "has_role", ctx.sender, "TREASURY"), "only TREASURY may burn")
    require(amount > 0, "amount must be positive, found " + str(amount))
    bal = self.balances.get(ctx.sender, 0)
    require(bal >= amount, "insufficient balance: have " + str(bal) + ", burning " + str(amount))
    self.balances[ctx.sender] = bal - amount
    self.supply -= amount
    emit(Burned, account=ctx.sender, amount=amount)


@public
def transfer(to: bytes, amount: int) -> None:
    """Between active accounts and admin keys of active organisations (admins pay the fees of
    their proposals and votes, so a newly admitted organisation's admin must be fundable)."""
    require(call("identity", "is_member", ctx.sender), "sender is not an active account or organisation admin")
    require(call("identity", "is_member", to), "recipient is not an active account or organisation admin")
    require(amount > 0, "amount must be positive, found " + str(amount))
    bal = self.balances.get(ctx.sender, 0)
    require(bal >= amount, "insufficient balance: have " + str(bal) + ", sending " + str(amount))
    self.balances[ctx.sender] = bal - amount
    self.balances[to] = self.balances.get(to, 0) + amount
    emit(Transfer, sender=ctx.sender, to=to, amount=amount)


@public
@requires("escrow")
def lock(key: str, frm: bytes, amount: int) -> None:
    require(len(key) > 0 and len(key) <= MAX_ESCROW_KEY, "escrow key must be 1..96 chars")
    require(amount > 0, "lock amount must be positive, found " + str(amount))
    bal = self.balances.get(frm, 0)
    require(bal >= amount, "insufficient balance: have " + str(bal) + ", locking " + str(amount))
    k = (ctx.caller_contract, key)
    self.balances[frm] = bal - amount
    self.escrows[k] = self.escrows.get(k, 0) + amount
    self.escrow_total += amount
    emit(Locked, contract=ctx.caller_contract, escrow=key, sender=frm, amount=amount)


@public
@requires("escrow")
def release(key: str, to: bytes, amount: int, cause: str) -> None:
    require(cause in ["refund", "payout", "fee", "holdback", "ruling", "arbiter_fee", "commission", "bond", "debt"], "unknown release cause " + cause)
    require(amount >= 0, "release amount must not be negative, found " + str(amount))
    if amount == 0:
        return
    k = (ctx.caller_contract, key)
    held = self.escrows.get(k, 0)
    require(held >= amount, "escrow " + key + " holds " + str(held) + ", cannot release " + str(amount))
    if held == amount:
        del self.escrows[k]
    else:
        self.escrows[k] = held - amount
    self.escrow_total -= amount
    self.balances[to] = self.balances.get(to, 0) + amount
    emit(Released, contract=ctx.caller_contract, escrow=key, to=to, amount=amount, cause=cause)


@view
def balance_of(who: bytes) -> int:
    return self.balances.get(who, 0)


@view
def escrow_of(contract: str, key: str) -> int:
    return self.escrows.get((contract, key), 0)


@view
def total_supply() -> int:
    return self.supply


@view
def total_escrow() -> int:
    return self.escrow_total
