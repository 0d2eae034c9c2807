"""A fungible token: the owner mints, holders transfer."""

TOKEN_NAME = "shop credit"
MAX_SUPPLY = 10**15

owner: bytes                      # storage scalar (default b"")
supply: int                       # storage scalar (default 0)
balances: Map[bytes, int]         # storage map, key bytes -> int
allowances: Map[tuple[bytes, bytes], int]   # tuple keys


@public
def init(first_owner: bytes) -> None:
    require(self.owner == b"", "already initialised")
    self.owner = first_owner


@public
def mint(to: bytes, amount: int) -> None:
    require(ctx.sender == self.owner, "only the owner mints")
    require(amount > 0, "amount must be positive")
    require(self.supply + amount <= MAX_SUPPLY, "supply cap")
    self.supply += amount
    self.balances[to] = self.balances.get(to, 0) + amount
    emit(Minted, to=to, amount=amount)


@public
def transfer(to: bytes, amount: int) -> bool:
    require(amount > 0, "amount must be positive")
    _move(ctx.sender, to, amount)
    return True


@public
def approve(spender: bytes, amount: int) -> None:
    self.allowances[(ctx.sender, spender)] = amount


@public
def transfer_from(owner_: bytes, to: bytes, amount: int) -> None:
    allowed = self.allowances.get((owner_, ctx.sender), 0)
    require(allowed >= amount, "allowance exceeded")
    self.allowances[(owner_, ctx.sender)] = allowed - amount
    _move(owner_, to, amount)


def _move(frm: bytes, to: bytes, amount: int) -> None:   # internal: not in the ABI
    bal = self.balances.get(frm, 0)
    require(bal >= amount, "insufficient balance")
    self.balances[frm] = bal - amount
    self.balances[to] = self.balances.get(to, 0) + amount
    emit(Transfer, sender=frm, to=to, amount=amount)


@view
def balance_of(who: bytes) -> int:
    return self.balances.get(who, 0)
