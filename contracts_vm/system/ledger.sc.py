"""Token and escrow ledger: balances per account, escrow sub-accounts per (contract, key).

Currencies: the chain's base currency (its code and decimals set at genesis by
``configure``, e.g. USD with 2) pays fees and keeps the original maps (``balances``,
``escrows``, ``supply``), so every contract and the fee path read it as before. Further
currencies are created only by a passed governance proposal (``gov_create_currency``:
a code, a name, its decimals and the one account that issues it, e.g. a stablecoin
partner or a merchant's points); their issuer ``issue``s to active accounts and
``retire``s from its own balance, so each currency's supply identity holds on its own
(supply = balances + escrows, per currency). The ``*_in`` methods take a currency code
and treat the base code as the base currency, so a contract pricing an order in any
currency uses one call shape. Amounts are always integer minor units of their
currency; every event that moves money names the currency.

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
#: Most currencies besides the base one (bounded listing work).
MAX_CURRENCIES = 32
#: Most decimals a currency may have.
MAX_DECIMALS = 18
#: Longest currency name.
MAX_CURRENCY_NAME = 64


class Currency(Record):
    code: str
    name: str
    decimals: int
    issuer: bytes
    supply: int
    escrowed: int

sealed: bool
supply: int
escrow_total: int
balances: Map[bytes, int]
escrows: Map[tuple[str, str], int]
currency_code: str
currency_decimals: int
currencies: Map[str, Currency]
currency_codes: list[str]
token_balances: Map[tuple[str, bytes], int]
token_escrows: Map[tuple[str, str, str], int]


def _active(who) -> bool:
    return call("identity", "is_active", who)


@public
def genesis_credit(to: bytes, amount: int) -> None:
    require(ctx.sender == GENESIS_SENDER and not self.sealed, "only genesis may credit opening balances")
    require(amount >= 0, "amount must not be negative")
    self.supply += amount
    self.balances[to] = self.balances.get(to, 0) + amount
    emit(Minted, to=to, amount=amount, currency=self.currency_code)


@public
def configure(currency_code: str, currency_decimals: int) -> None:
    """Genesis names the base currency once (before seal)."""
    require(ctx.sender == GENESIS_SENDER and not self.sealed, "only genesis may configure")
    _check_code(currency_code)
    require(currency_decimals >= 0 and currency_decimals <= MAX_DECIMALS,
            "decimals must be 0..18, found " + str(currency_decimals))
    self.currency_code = currency_code
    self.currency_decimals = currency_decimals


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
    emit(Minted, to=to, amount=amount, currency=self.currency_code)


@public
def burn(amount: int) -> None:
    require(call("identity", "has_role", ctx.sender, "TREASURY"), "only TREASURY may burn")
    require(amount > 0, "amount must be positive, found " + str(amount))
    bal = self.balances.get(ctx.sender, 0)
    require(bal >= amount, "insufficient balance: have " + str(bal) + ", burning " + str(amount))
    self.balances[ctx.sender] = bal - amount
    self.supply -= amount
    emit(Burned, account=ctx.sender, amount=amount, currency=self.currency_code)


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
    emit(Transfer, sender=ctx.sender, to=to, amount=amount, currency=self.currency_code)


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
    emit(Locked, contract=ctx.caller_contract, escrow=key, sender=frm, amount=amount, currency=self.currency_code)


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
    emit(Released, contract=ctx.caller_contract, escrow=key, to=to, amount=amount, cause=cause,
         currency=self.currency_code)


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


# ---- further currencies ---------------------------------------------------------------

def _check_code(code) -> None:
    """3..8 of A-Z and 0-9: ISO 4217 codes (USD) and longer ticker symbols (ACMEPTS)."""
    require(len(code) >= 3 and len(code) <= 8, "a currency code is 3..8 characters, found \"" + code + "\"")
    for ch in code.encode():
        require((ch >= 65 and ch <= 90) or (ch >= 48 and ch <= 57),
                "a currency code uses A-Z and 0-9 only, found \"" + code + "\"")


def _currency(code) -> Currency:
    c = self.currencies.get(code)
    require(c != None, "no currency " + code + " on this chain (the base currency is " + self.currency_code + ")")
    return c


def _is_base(code) -> bool:
    return code == self.currency_code or code == ""


def _balance_in(code, who) -> int:
    if _is_base(code):
        return self.balances.get(who, 0)
    return self.token_balances.get((code, who), 0)


def _set_balance_in(code, who, amount) -> None:
    if _is_base(code):
        self.balances[who] = amount
    else:
        self.token_balances[(code, who)] = amount


@public
@requires("governance")
def gov_create_currency(code: str, name: str, decimals: int, issuer: bytes) -> None:
    """A currency the members voted for; only ``issuer`` creates and retires its supply."""
    _check_code(code)
    require(not _is_base(code) and not (code in self.currencies), "currency " + code + " exists already")
    codes = self.currency_codes
    if codes == None:
        codes = []
    require(len(codes) < MAX_CURRENCIES, "this chain has the most currencies it may have, 32")
    require(len(name) >= 1 and len(name) <= MAX_CURRENCY_NAME, "a currency name is 1..64 characters")
    require(decimals >= 0 and decimals <= MAX_DECIMALS, "decimals must be 0..18, found " + str(decimals))
    require(_active(issuer), "the issuer must be an active account")
    self.currencies[code] = Currency(code=code, name=name, decimals=decimals, issuer=issuer, supply=0, escrowed=0)
    codes.append(code)
    self.currency_codes = codes
    emit(CurrencyCreated, currency=code, name=name, decimals=decimals, issuer=issuer)


@public
@requires("governance")
def gov_set_issuer(code: str, issuer: bytes) -> None:
    c = _currency(code)
    require(_active(issuer), "the issuer must be an active account")
    c.issuer = issuer
    self.currencies[code] = c
    emit(IssuerChanged, currency=code, issuer=issuer)


@public
def issue(code: str, to: bytes, amount: int) -> None:
    c = _currency(code)
    require(ctx.sender == c.issuer, "only the issuer of " + code + " issues it")
    require(amount > 0, "amount must be positive, found " + str(amount))
    require(_active(to), "recipient is not an active account")
    c.supply += amount
    self.currencies[code] = c
    self.token_balances[(code, to)] = self.token_balances.get((code, to), 0) + amount
    emit(Minted, to=to, amount=amount, currency=code)


@public
def retire(code: str, amount: int) -> None:
    c = _currency(code)
    require(ctx.sender == c.issuer, "only the issuer of " + code + " retires it")
    require(amount > 0, "amount must be positive, found " + str(amount))
    bal = self.token_balances.get((code, ctx.sender), 0)
    require(bal >= amount, "insufficient " + code + " balance: have " + str(bal) + ", retiring " + str(amount))
    self.token_balances[(code, ctx.sender)] = bal - amount
    c.supply -= amount
    self.currencies[code] = c
    emit(Burned, account=ctx.sender, amount=amount, currency=code)


@public
def transfer_in(code: str, to: bytes, amount: int) -> None:
    """``transfer`` in any currency of the chain (the base code moves the base currency)."""
    if _is_base(code):
        transfer(to, amount)
        return
    _currency(code)
    require(call("identity", "is_member", ctx.sender), "sender is not an active account or organisation admin")
    require(call("identity", "is_member", to), "recipient is not an active account or organisation admin")
    require(amount > 0, "amount must be positive, found " + str(amount))
    bal = _balance_in(code, ctx.sender)
    require(bal >= amount, "insufficient " + code + " balance: have " + str(bal) + ", sending " + str(amount))
    _set_balance_in(code, ctx.sender, bal - amount)
    _set_balance_in(code, to, _balance_in(code, to) + amount)
    emit(Transfer, sender=ctx.sender, to=to, amount=amount, currency=code)


@public
@requires("escrow")
def lock_in(code: str, key: str, frm: bytes, amount: int) -> None:
    if _is_base(code):
        lock(key, frm, amount)
        return
    c = _currency(code)
    require(len(key) > 0 and len(key) <= MAX_ESCROW_KEY, "escrow key must be 1..96 chars")
    require(amount > 0, "lock amount must be positive, found " + str(amount))
    bal = _balance_in(code, frm)
    require(bal >= amount, "insufficient " + code + " balance: have " + str(bal) + ", locking " + str(amount))
    k = (code, ctx.caller_contract, key)
    _set_balance_in(code, frm, bal - amount)
    self.token_escrows[k] = self.token_escrows.get(k, 0) + amount
    c.escrowed += amount
    self.currencies[code] = c
    emit(Locked, contract=ctx.caller_contract, escrow=key, sender=frm, amount=amount, currency=code)


@public
@requires("escrow")
def release_in(code: str, key: str, to: bytes, amount: int, cause: str) -> None:
    if _is_base(code):
        release(key, to, amount, cause)
        return
    c = _currency(code)
    require(cause in ["refund", "payout", "fee", "holdback", "ruling", "arbiter_fee", "commission", "bond", "debt"], "unknown release cause " + cause)
    require(amount >= 0, "release amount must not be negative, found " + str(amount))
    if amount == 0:
        return
    k = (code, ctx.caller_contract, key)
    held = self.token_escrows.get(k, 0)
    require(held >= amount, "escrow " + key + " holds " + str(held) + " " + code + ", cannot release " + str(amount))
    if held == amount:
        del self.token_escrows[k]
    else:
        self.token_escrows[k] = held - amount
    c.escrowed -= amount
    self.currencies[code] = c
    _set_balance_in(code, to, _balance_in(code, to) + amount)
    emit(Released, contract=ctx.caller_contract, escrow=key, to=to, amount=amount, cause=cause, currency=code)


@view
def currency() -> any:
    """The base currency: {code, decimals}."""
    return {"code": self.currency_code, "decimals": self.currency_decimals}


@view
def get_currency(code: str) -> any:
    """A currency's record (the base one is synthesised: no issuer, its supply and escrow)."""
    if _is_base(code):
        return {"code": self.currency_code, "name": "base currency", "decimals": self.currency_decimals,
                "issuer": b"", "supply": self.supply, "escrowed": self.escrow_total}
    return self.currencies.get(code)


@view
def currency_list() -> list[str]:
    out = [self.currency_code]
    codes = self.currency_codes
    if codes != None:
        for code in codes:
            out.append(code)
    return out


@view
def balance_in(code: str, who: bytes) -> int:
    return _balance_in(code, who)


@view
def escrow_in(code: str, contract: str, key: str) -> int:
    if _is_base(code):
        return self.escrows.get((contract, key), 0)
    return self.token_escrows.get((code, contract, key), 0)


@view
def balances_of(who: bytes) -> list[any]:
    """[[code, minor units], ...] for the base currency and every other one the account holds."""
    out = [[self.currency_code, self.balances.get(who, 0)]]
    codes = self.currency_codes
    if codes != None:
        for code in codes:
            b = self.token_balances.get((code, who), 0)
            if b != 0:
                out.append([code, b])
    return out
