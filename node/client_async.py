"""The asyncio client: the sync client's operations on aiohttp, never blocking the event loop.

How it works: ``AsyncClient`` drives the I/O-free operations of ``node.client_ops`` with
an aiohttp session (``drive_async``), so sending, idempotent re-sending, polling and
back-off all await instead of sleeping. Waiting for a receipt subscribes to new blocks
over the node's websocket first and then asks for the receipt, so a block committed in
between is not missed; without a websocket it polls. ``wait_receipt_ws`` is that wait on
its own, which the sync client also runs (on a private event loop in a worker thread
when its caller is itself inside a running loop, so the sync client works from async
code too, only blocking).

Use it as ``async with AsyncClient(url) as client: receipt = await client.transact(...)``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import aiohttp

from ledger.crypto import SigningKey
from ledger.hexfmt import to_hex
from node import client_ops as ops
from node.client_ops import DEFAULT_GAS, DEFAULT_WAIT_S, UNREACHABLE, RpcFailure

#: Timeout of one HTTP request.
HTTP_TIMEOUT_S = 10.0
#: Most characters of a non-JSON error body quoted in an RpcFailure.
MAX_SHOWN_REASON_CHARS = 300
#: How long closing the receipt websocket may take.
WS_CLOSE_TIMEOUT_S = 5.0

T = TypeVar("T")


def rpc_failure_from_http(status: int, url: str, text: bytes) -> RpcFailure:
    """An HTTP error answer as an RpcFailure: the JSON-RPC error it carries, else the status and text."""
    try:
        reply = json.loads(text or b"{}")
    except ValueError:  # a plain-text refusal (503 at a connection cap, 408 at a timeout)
        reply = {}
    if isinstance(reply, dict) and isinstance(reply.get("error"), dict):
        return failure_from_reply(reply)
    reason = text.decode("utf-8", "replace").strip()[:MAX_SHOWN_REASON_CHARS]
    return RpcFailure(status, f"HTTP {status} from {url}" + (f": {reason}" if reason else ""))


def failure_from_reply(reply: dict) -> RpcFailure:
    err = reply["error"]
    return RpcFailure(err.get("code", 0), err.get("message", ""), err.get("data"))


def request_body(request_id: int, method: str, params: tuple) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": list(params)}).encode()


async def wait_receipt_ws(url: str, tx_id: str, timeout: float,
                          try_receipt: Callable[[], Awaitable[dict | None]]) -> dict:
    """The committed receipt of ``tx_id``, woken by the node's new-block notifications.

    Raises TimeoutError when it does not commit in time; OSError, aiohttp.ClientError,
    ConnectionError or an RpcFailure the subscription answered (a node at its websocket or
    subscription limit) when the websocket cannot be used: callers then poll.
    """
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url + "/ws", timeout=aiohttp.ClientWSTimeout(ws_close=WS_CLOSE_TIMEOUT_S)) as ws:
            await ws.send_json({"jsonrpc": "2.0", "id": 1, "method": "chain_subscribe", "params": ["newBlocks"]})
            # Subscribed first, then checked: a block committed in between is not missed.
            receipt = await try_receipt()
            while receipt is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"transaction {tx_id} was not committed within {timeout:.1f} s")
                try:
                    message = await ws.receive(timeout=left)
                except asyncio.TimeoutError:
                    continue
                if message.type != aiohttp.WSMsgType.TEXT:
                    raise ConnectionError(f"websocket closed: {message.type}")
                data = json.loads(message.data)
                if data.get("method") == "chain_subscription":
                    if tx_id in data["params"]["result"].get("txs", []):
                        receipt = await try_receipt()
                elif "error" in data:
                    raise failure_from_reply(data)
            return receipt


def run_blocking(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to its end from sync code, even when this thread is inside a running loop.

    ``asyncio.run`` refuses to start inside a running loop (a sync client called from a
    web handler, a notebook): the coroutine then gets its own loop in a worker thread.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    outcome: dict[str, Any] = {}

    def worker() -> None:
        try:
            outcome["value"] = asyncio.run(make())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread below
            outcome["error"] = exc

    thread = threading.Thread(target=worker, name="shopchain-client-wait", daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


class AsyncClient:
    """JSON-RPC to one node from asyncio code; the same operations as ``node.client.Client``."""

    def __init__(self, url: str, chain_id: str | None = None, timeout: float = HTTP_TIMEOUT_S) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.state = ops.ClientState(chain_id)
        self._ids = itertools.count(1)
        self._session: aiohttp.ClientSession | None = None

    @property
    def chain_id(self) -> str | None:
        return self.state.chain_id

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # --- transport ------------------------------------------------------------------

    async def request(self, method: str, *params: Any) -> Any:
        return await self._request(method, params)

    async def _request(self, method: str, params: tuple) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        body = request_body(next(self._ids), method, params)
        try:
            async with self._session.post(self.url + "/rpc", data=body,
                                          headers={"Content-Type": "application/json"}) as response:
                text = await response.read()
                if response.status != 200:
                    raise rpc_failure_from_http(response.status, self.url, text)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise RpcFailure(UNREACHABLE, f"cannot reach {self.url}: {exc or type(exc).__name__}") from None
        reply = json.loads(text)
        if "error" in reply:
            raise failure_from_reply(reply)
        return reply["result"]

    async def _run(self, op: ops.Op[T]) -> T:
        return await ops.drive_async(op, self._request)

    # --- reads ----------------------------------------------------------------------

    async def status(self) -> dict:
        return await self._run(ops.status(self.state))

    async def block(self, height: int | str = "latest", full: bool = False) -> dict:
        return await self.request("chain_getBlock", height, full)

    async def receipt(self, tx_id: str) -> dict:
        return await self.request("chain_getReceipt", tx_id)

    async def transaction(self, tx_id: str) -> dict | None:
        """``chain_getTransaction`` (status pending or committed), None when the node knows no such id."""
        return await self._run(ops.find_tx(tx_id))

    async def call(self, contract: str, method: str, *args: Any, height: int | str = "latest") -> Any:
        """A read-only contract view; bytes arguments as bytes or 0x-hex."""
        answer = await self.request("chain_call", contract, method, [ops.json_arg(a) for a in args], height)
        return answer["result"]

    async def account(self, address: bytes) -> dict:
        return await self.request("account_get", to_hex(address))

    # --- writes ---------------------------------------------------------------------

    async def build(self, key: SigningKey, contract: str, method: str, args: list, gas: int = DEFAULT_GAS,
                    nonce: int | None = None) -> bytes:
        return await self._run(ops.build(self.state, key, contract, method, args, gas, nonce))

    async def resubmit(self, raw: bytes) -> str:
        """Submit signed bytes (again): idempotent by transaction id, see node.client_ops."""
        return await self._run(ops.submit(self.state, raw))

    async def send(self, key: SigningKey, contract: str, method: str, *args: Any, gas: int = DEFAULT_GAS) -> str:
        """Sign once and submit; returns the id once the node has the transaction."""
        return await self.resubmit(await self.build(key, contract, method, list(args), gas))

    async def wait(self, tx_id: str, timeout: float = DEFAULT_WAIT_S) -> dict:
        """The committed receipt; raises TimeoutError if it does not commit in time."""
        try:
            return await wait_receipt_ws(self.url, tx_id, timeout, lambda: self._run(ops.try_receipt(tx_id)))
        except (OSError, aiohttp.ClientError, ConnectionError, RpcFailure):  # no usable websocket: poll
            return await self._run(ops.wait_poll(tx_id, timeout))

    async def wait_for_height(self, height: int, timeout: float = DEFAULT_WAIT_S) -> dict:
        return await self._run(ops.wait_for_height(self.state, height, timeout))

    async def transact(self, key: SigningKey, contract: str, method: str, *args: Any, gas: int = DEFAULT_GAS,
                       timeout: float = DEFAULT_WAIT_S, idempotency_key: str | None = None) -> dict:
        """Send, wait, and raise TxFailed if the receipt failed. Returns the receipt.

        With ``idempotency_key``, calling again with the same key (say after a timeout)
        resubmits and waits for the transaction the first call signed, never a new one.
        """
        raw = await self._run(ops.signed_for(self.state, key, contract, method, list(args), gas, idempotency_key))
        return ops.check_receipt(await self.wait(await self.resubmit(raw), timeout))
