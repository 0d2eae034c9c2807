"""``mailbox_send`` and ``mailbox_fetch``: the RPC face of the node's mailbox (node/mailbox.py).

How it works: a client posts an encoded, signed ``ledger.mailbox.Envelope`` (0x-hex);
the node admits it under the mailbox's rules, stores it off chain and gossips it to the
other validators, so the recipient can read it from its own organisation's node. A
recipient reads with a signed ``FetchRequest``; the answer carries each envelope's
encoding, so the client checks the sender's signature itself rather than trusting the
node. Refusals are ChainError with ``data.type`` MailboxError and ``data.reason`` the
rule (``oversize``, ``unregistered_sender``, ``no_encryption_key``, ``expired``, ...).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ledger.mailbox import MAX_ENVELOPE_BYTES, MAX_FETCH_REQUEST_BYTES
from node.rpc.jsonrpc import Method, Param
from node.rpc.result_schemas import array, ref
from node.rpc.types import HEX
from node.rpc.views import hx

if TYPE_CHECKING:
    from node.rpc.nodeview import NodeView


def mailbox_routes(node: "NodeView") -> list[Method]:
    async def mailbox_send(ctx, envelope: bytes) -> dict:
        env, new, expires_ms = node.mailbox_post(envelope)
        return {"id": hx(env.envelope_id), "new": new, "expires_ms": expires_ms}

    async def mailbox_fetch(ctx, request: bytes) -> list:
        return [{"id": hx(e.envelope_id), "sender": hx(e.sender), "order": e.order, "kind": e.kind,
                 "created_ms": e.created_ms, "envelope": hx(e.encode())} for e in node.mailbox_fetch(request)]

    return [
        Method("mailbox_send", mailbox_send,
               (Param("envelope", HEX, f"an encoded, signed mailbox envelope (0x-hex, at most {MAX_ENVELOPE_BYTES} "
                                       f"bytes): recipient account, the X25519 key it is sealed to, sender key, "
                                       f"order, kind, created_ms, ciphertext, signature"),),
               "{id, new (false: this node held it already), expires_ms}: stored off chain for 30 days and "
               "gossiped to the other validators",
               summary="Post a sealed envelope (personal data stays off chain).", result_schema=ref("MailboxPosted")),
        Method("mailbox_fetch", mailbox_fetch,
               (Param("request", HEX, f"an encoded fetch request signed by the recipient account's current key "
                                      f"(at most {MAX_FETCH_REQUEST_BYTES} bytes; dated within 5 minutes)"),),
               "[{id, sender, order, kind, created_ms, envelope}]: the account's live envelopes, oldest first, "
               "at most 32",
               summary="Read the sealed envelopes addressed to an account.",
               result_schema=array(ref("MailboxEnvelope"))),
    ]
