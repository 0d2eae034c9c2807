"""Token and escrow ledger: balances, per-order escrow, lock/release for order contracts.

lock and release carry @requires("escrow"): only a contract installed with the
"escrow" capability (the marketplace) may call them.
"""

treasury: bytes
supply: int
balances: Map[bytes, int]
escrow: Map[bytes, int]


@public
def init(treasury: bytes) -> None:
    require(self.treasury == b"", "already initialised")
    self.treasury = treasury


@public
def mint(to: bytes, amount: int) -> None:
    require(ctx.sender == self.treasury, "only the treasury mints")
    require(amount > 0, "amount must be positive")
    self.supply += amount
    self.balances[to] += amount
    emit(Minted, to=to, amount=amount)


@public
def transfer(to: bytes, amount: int) -> None:
    require(amount > 0, "amount must be positive")
    bal = self.balances.get(ctx.sender, 0)
    require(bal >= amount, "insufficient balance")
    self.balances[ctx.sender] = bal - amount
    self.balances[to] += amount
    emit(Transfer, sender=ctx.sender, to=to, amount=amount)


@public
@requires("escrow")
def lock(order: bytes, payer: bytes, amount: int) -> None:
    require(amount > 0, "amount must be positive")
    bal = self.balances.get(payer, 0)
    require(bal >= amount, "insufficient balance")
    self.balances[payer] = bal - amount
    self.escrow[order] += amount
    emit(Locked, order=order, payer=payer, amount=amount)


@public
@requires("escrow")
def release(order: bytes, to: bytes, amount: int, cause: str) -> None:
    held = self.escrow.get(order, 0)
    require(amount > 0 and amount <= held, "release exceeds escrow")
    self.escrow[order] = held - amount
    self.balances[to] += amount
    emit(Released, order=order, to=to, amount=amount, cause=cause)


@view
def balance_of(who: bytes) -> int:
    return self.balances.get(who, 0)


@view
def escrow_of(order: bytes) -> int:
    return self.escrow.get(order, 0)
