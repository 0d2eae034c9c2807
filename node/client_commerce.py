"""Typed commerce helpers for the Python clients: ``Commerce(Client)`` and ``AsyncCommerce(AsyncClient)``.

How it works: the helpers themselves (``transfer``, ``place_order``, ``accept_order``,
``get_order``, ``request_return``, ``open_claim``, ``publish_review``, ...: modules
node.commerce_ledger, node.commerce_orders, node.commerce_rewards and
node.commerce_aftersales) do no I/O: each checks its typed inputs and returns a
``ContractCall`` saying which method to call with which arguments and how to decode the
answer. The two facades here only execute one: ``send`` signs it once and waits
through the client's ``transact`` (so the client's idempotent submission applies; pass
``idempotency_key`` to make a repeated call wait for the first one's transaction), and
``read`` asks ``chain_call``. So every helper exists once for both the sync and the
async client, and nothing is signed before the inputs passed their checks::

    shop = Commerce(Client(url))
    order_id = shop.send(buyer, place_order(merchant, [OrderItem(sku, 1, 25_000, terms)], ...)).value
    order = shop.read(get_order(order_id))          # an Order; order.state is OrderState.PLACED

Everything the helper modules define is re-exported here, so applications import one module.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from ledger.crypto import SigningKey
from node.client_ops import DEFAULT_GAS, DEFAULT_WAIT_S
from node.commerce_aftersales import *  # noqa: F401,F403  (the public helpers, re-exported)
from node.commerce_aftersales import __all__ as _aftersales_names
from node.commerce_calls import ContractCall
from node.commerce_ledger import *  # noqa: F401,F403
from node.commerce_ledger import __all__ as _ledger_names
from node.commerce_orders import *  # noqa: F401,F403
from node.commerce_orders import __all__ as _orders_names
from node.commerce_rewards import *  # noqa: F401,F403
from node.commerce_rewards import __all__ as _rewards_names

T = TypeVar("T")


class SyncClient(Protocol):
    """What ``Commerce`` needs of a client (node.client.Client has it; a test double may too)."""

    chain_id: str | None

    def transact(self, key: SigningKey, contract: str, method: str, *args: Any, gas: int = ..., timeout: float = ...,
                 idempotency_key: str | None = ...) -> dict: ...

    def call(self, contract: str, method: str, *args: Any, height: int | str = ...) -> Any: ...

    def status(self) -> dict: ...


class AsyncClientLike(Protocol):
    """What ``AsyncCommerce`` needs of a client (node.client_async.AsyncClient has it)."""

    @property
    def chain_id(self) -> str | None: ...

    def transact(self, key: SigningKey, contract: str, method: str, *args: Any, gas: int = ..., timeout: float = ...,
                 idempotency_key: str | None = ...) -> Awaitable[dict]: ...

    def call(self, contract: str, method: str, *args: Any, height: int | str = ...) -> Awaitable[Any]: ...

    def status(self) -> Awaitable[dict]: ...


@dataclass(frozen=True)
class Sent(Generic[T]):
    """A committed transaction's decoded value (``value``) and its receipt."""

    value: T
    receipt: dict

    @property
    def tx_id(self) -> str:
        return self.receipt["tx_id"]

    @property
    def events(self) -> list[dict]:
        return self.receipt["events"]


def _writing(call: ContractCall[Any]) -> ContractCall[Any]:
    if not isinstance(call, ContractCall):
        raise TypeError(f"send takes a ContractCall built by a commerce helper, found {type(call).__name__}")
    if call.view:
        raise TypeError(f"{call.contract}.{call.method} is a view: read it (read(...)), there is nothing to sign")
    return call


def _reading(call: ContractCall[Any]) -> ContractCall[Any]:
    if not isinstance(call, ContractCall):
        raise TypeError(f"read takes a ContractCall built by a commerce helper, found {type(call).__name__}")
    if not call.view:
        raise TypeError(f"{call.contract}.{call.method} changes state: send it (send(key, ...)), a view cannot")
    return call


class Commerce:
    """The typed helpers on a sync ``Client``: ``send(key, call)`` and ``read(call)``."""

    def __init__(self, client: SyncClient) -> None:
        self.client = client

    def send(self, key: SigningKey, call: ContractCall[T], gas: int = DEFAULT_GAS, timeout: float = DEFAULT_WAIT_S,
             idempotency_key: str | None = None) -> Sent[T]:
        """Sign once, submit, wait for the receipt (TxFailed if it failed) and decode its value."""
        call = _writing(call)
        receipt = self.client.transact(key, call.contract, call.method, *call.args, gas=gas, timeout=timeout,
                                       idempotency_key=idempotency_key)
        return Sent(call.decode(receipt["return_value"]), receipt)

    def read(self, call: ContractCall[T], height: int | str = "latest") -> T:
        call = _reading(call)
        return call.decode(self.client.call(call.contract, call.method, *call.args, height=height))

    def chain_id(self) -> str:
        """The chain id (what ``publish_review`` signs over)."""
        return self.client.chain_id or self.client.status()["chain_id"]


class AsyncCommerce:
    """The typed helpers on an ``AsyncClient``: ``await send(key, call)`` and ``await read(call)``."""

    def __init__(self, client: AsyncClientLike) -> None:
        self.client = client

    async def send(self, key: SigningKey, call: ContractCall[T], gas: int = DEFAULT_GAS,
                   timeout: float = DEFAULT_WAIT_S, idempotency_key: str | None = None) -> Sent[T]:
        call = _writing(call)
        receipt = await self.client.transact(key, call.contract, call.method, *call.args, gas=gas, timeout=timeout,
                                             idempotency_key=idempotency_key)
        return Sent(call.decode(receipt["return_value"]), receipt)

    async def read(self, call: ContractCall[T], height: int | str = "latest") -> T:
        call = _reading(call)
        return call.decode(await self.client.call(call.contract, call.method, *call.args, height=height))

    async def chain_id(self) -> str:
        return self.client.chain_id or (await self.client.status())["chain_id"]


__all__ = ["AsyncCommerce", "Commerce", "ContractCall", "Sent", *_ledger_names, *_orders_names, *_rewards_names,
           *_aftersales_names]
