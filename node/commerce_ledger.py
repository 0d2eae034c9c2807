"""Typed calls for the token and escrow ledger: balances and transfers in every currency of the chain.

How it works: as in node.commerce_orders, each function checks its typed inputs and
returns a ``ContractCall`` (node.commerce_calls) for ``Commerce.send`` / ``Commerce.read``;
argument order and limits are those of contracts_vm/system/ledger.sc.py. Amounts are
always integer minor units of their currency (the base one pays fees and prices orders
unless an order names another); a currency is named by its code, and the base code (or
"") means the base currency in every ``*_in`` call, so one call shape serves them all.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.errors import ValidationError
from node.commerce_calls import (ContractCall, as_int, bytes32, decode_record, integer, nothing, order_id, record_or_none,
                                 text, view, write)


@dataclass(frozen=True)
class Currency:
    """``ledger.get_currency``: the base currency's record has no issuer (b"")."""

    code: str
    name: str
    decimals: int
    issuer: bytes
    supply: int
    escrowed: int


@dataclass(frozen=True)
class BaseCurrency:
    """``ledger.currency``: the code and decimals of the currency fees and base-priced orders use."""

    code: str
    decimals: int


def _code(code: str) -> str:
    return text(code, "currency code", 0, 16)


def _positive(amount: int) -> int:
    return integer(amount, "amount", 1)


def transfer(to: bytes, amount: int) -> ContractCall[None]:
    """ledger.transfer: ``amount`` minor units (> 0) of the base currency to an active account."""
    return write("ledger", "transfer", bytes32(to, "to"), _positive(amount), decode=nothing)


def transfer_in(currency: str, to: bytes, amount: int) -> ContractCall[None]:
    """ledger.transfer_in: ``transfer`` in any currency of the chain."""
    return write("ledger", "transfer_in", _code(currency), bytes32(to, "to"), _positive(amount), decode=nothing)


def mint(to: bytes, amount: int) -> ContractCall[None]:
    """ledger.mint, by TREASURY: the only way the base supply grows."""
    return write("ledger", "mint", bytes32(to, "to"), _positive(amount), decode=nothing)


def burn(amount: int) -> ContractCall[None]:
    """ledger.burn, by TREASURY, from its own balance."""
    return write("ledger", "burn", _positive(amount), decode=nothing)


def issue(currency: str, to: bytes, amount: int) -> ContractCall[None]:
    """ledger.issue, by the currency's issuer (a currency governance created)."""
    return write("ledger", "issue", text(currency, "currency code", 1, 16), bytes32(to, "to"), _positive(amount),
                 decode=nothing)


def retire(currency: str, amount: int) -> ContractCall[None]:
    return write("ledger", "retire", text(currency, "currency code", 1, 16), _positive(amount), decode=nothing)


def balance_of(account: bytes) -> ContractCall[int]:
    """ledger.balance_of: the account's base-currency balance in minor units."""
    return view("ledger", "balance_of", bytes32(account, "account"), decode=as_int)


def balance_in(currency: str, account: bytes) -> ContractCall[int]:
    return view("ledger", "balance_in", _code(currency), bytes32(account, "account"), decode=as_int)


def balances_of(account: bytes) -> ContractCall[dict[str, int]]:
    """Every currency the account holds: code -> minor units (the base currency always listed)."""
    def decode(value: list) -> dict[str, int]:
        if not isinstance(value, list):
            raise ValidationError(f"balances_of: expected a list of [code, amount], found {value!r:.60}")
        return {code: as_int(amount, code) for code, amount in value}
    return view("ledger", "balances_of", bytes32(account, "account"), decode=decode)


def escrow_of_order(order: int) -> ContractCall[int]:
    """What an order's escrow holds now (the ledger's escrow "o<id>" of the orders contract, base currency)."""
    return view("ledger", "escrow_of", "orders", "o" + str(order_id(order)), decode=as_int)


def escrow_in(currency: str, contract: str, key: str) -> ContractCall[int]:
    """What escrow ``key`` of ``contract`` holds in ``currency`` (orders' escrows are "o<order id>")."""
    return view("ledger", "escrow_in", _code(currency), text(contract, "contract", 1, 64), text(key, "escrow key", 1, 96),
                decode=as_int)


def base_currency() -> ContractCall[BaseCurrency]:
    return view("ledger", "currency", decode=lambda v: decode_record(BaseCurrency, v))


def get_currency(currency: str) -> ContractCall[Currency | None]:
    return view("ledger", "get_currency", _code(currency), decode=record_or_none(Currency))


def currency_list() -> ContractCall[list[str]]:
    """The codes of every currency, the base one first."""
    return view("ledger", "currency_list", decode=lambda v: [text(c, "currency code", 1, 16) for c in v])


def total_supply() -> ContractCall[int]:
    return view("ledger", "total_supply", decode=as_int)


def total_escrow() -> ContractCall[int]:
    return view("ledger", "total_escrow", decode=as_int)


#: The public names (tests/node/test_client_commerce.py checks that every helper, record and Enum is here).
__all__ = ["BaseCurrency", "Currency", "balance_in", "balance_of", "balances_of", "base_currency", "burn", "currency_list",
           "escrow_in", "escrow_of_order", "get_currency", "issue", "mint", "retire", "total_escrow",
           "total_supply", "transfer", "transfer_in"]
