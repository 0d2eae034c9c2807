"""The node's mailbox: sealed envelopes between accounts, kept off chain and gossiped.

How it works: ``post`` takes an encoded ``ledger.mailbox.Envelope`` from a client
(``mailbox_send``) or a peer (gossip) and admits it only if it is at most
``MAX_ENVELOPE_BYTES``, signed by a registered account's current key, addressed to an
account whose registered X25519 ``enc_key`` is the key it was sealed to, made no later
than ``MAX_CLOCK_SKEW_MS`` ahead of this node's clock and not older than its TTL
(``MAILBOX_TTL_MS``), within the sender's rate (``SENDS_PER_MINUTE``, a token bucket per
sender), the recipient's quota (``MAX_PER_RECIPIENT``) of which one sender may fill
only ``MAX_PER_SENDER_RECIPIENT`` (so no single member can block another's mailbox),
and the store's (``MAX_ENVELOPES``). Posting the same envelope twice is harmless (``new`` is False), so
gossip needs no loop detection: the runtime broadcasts an envelope to every validator
once, when it is new to this node, and when a validator (re)connects the runtime sends
it the ``MAX_RESYNC_ENVELOPES`` newest live envelopes (``recent``), so a node that was
down or restored from a snapshot (which carries no mailbox) catches up on what was
posted meanwhile. The sender's rate applies to clients' posts only: a peer relays
envelopes the sender's own node already rate-limited. ``fetch`` answers a signed
``FetchRequest`` of the recipient account with its live envelopes.

Envelopes live in the node's LevelDB under the ``schema.MAILBOX`` prefix, outside the
state trie (nothing here is consensus data, and snapshots skip it):

    Y r <recipient account:32> <expires_ms:8> <envelope id:32>  -> encoded envelope
    Y i <envelope id:32>                                         -> <expires_ms:8> <recipient:32> <sender:32>
    Y x <expires_ms:8> <envelope id:32>                          -> <recipient:32> <sender:32>

so a recipient's envelopes iterate in expiry order and ``sweep`` deletes expired ones
oldest first, at most ``SWEEP_BATCH`` per call (the runtime calls it every tick).
Refusals raise ``MailboxError`` with a short ``reason`` (a metric label) and a message
saying what was expected and what was found.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from collections.abc import Callable

from ledger.errors import ChainError
from ledger.hexfmt import to_hex
from ledger.mailbox import MAX_ENVELOPE_BYTES, Envelope, FetchRequest
from ledger.storage import schema
from ledger.storage.kv import KVStore

#: How long an envelope is kept after it was made: 30 days, then it is deleted.
MAILBOX_TTL_MS = 30 * 24 * 3600 * 1000
#: How far ahead of this node's clock an envelope or fetch request may be dated
#: (and how old a fetch request may be).
MAX_CLOCK_SKEW_MS = 5 * 60 * 1000
#: Most live envelopes kept for one recipient account.
MAX_PER_RECIPIENT = 256
#: Most of those from one sender key (an order needs a handful: details, label, tracking, disclosures).
MAX_PER_SENDER_RECIPIENT = 32
#: Most live envelopes in this node's mailbox.
MAX_ENVELOPES = 100_000
#: Envelopes one sender may post per minute (token bucket: bursts up to this, refilled evenly).
SENDS_PER_MINUTE = 60
#: Senders whose buckets are remembered (the least recently seen are forgotten first).
MAX_RATE_SENDERS = 10_000
#: Most envelopes one fetch answers (a recipient's oldest first).
MAX_FETCH_ENVELOPES = 32
#: Most expired envelopes one sweep deletes.
SWEEP_BATCH = 256
#: Newest envelopes sent to a validator when it (re)connects.
MAX_RESYNC_ENVELOPES = 256

_RECIPIENT, _INDEX, _EXPIRY = schema.MAILBOX + b"r", schema.MAILBOX + b"i", schema.MAILBOX + b"x"
_MS = struct.Struct(">Q")


class MailboxError(ChainError):
    """An envelope or fetch request refused; ``reason`` names the rule."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Mailbox:
    """Admission, storage, fetch and expiry of sealed envelopes over a ``KVStore``.

    ``signer_account(key)`` is the account ``key`` currently signs for (None: it may not
    sign); ``enc_key_of(account)`` the account's registered X25519 key (None or b"": none).
    """

    def __init__(self, kv: KVStore, chain_id: str, signer_account: Callable[[bytes], bytes | None],
                 enc_key_of: Callable[[bytes], bytes | None], now_ms: Callable[[], int],
                 sync_writes: bool = True) -> None:
        self.kv, self.chain_id = kv, chain_id
        self._signer_account, self._enc_key_of, self._now_ms = signer_account, enc_key_of, now_ms
        self.sync_writes = sync_writes
        self._buckets: OrderedDict[bytes, tuple[float, int]] = OrderedDict()
        # Live envelopes per recipient and per (recipient, sender) (at most MAX_ENVELOPES keys each).
        self._per_recipient: dict[bytes, int] = {}
        self._per_pair: dict[bytes, int] = {}
        for _key, value in kv.iterate(prefix=_INDEX):
            self._counted(value[8:40], value[40:72], +1)
        self.count = sum(self._per_recipient.values())

    # --- posting --------------------------------------------------------------------

    def post(self, raw: bytes, from_client: bool = True) -> tuple[Envelope, bool]:
        """Admit an encoded envelope; (envelope, True) if it is new here, (envelope, False) if held already.

        ``from_client`` False: relayed by a validator, so the sender's rate was charged where it was posted."""
        if type(raw) is not bytes or len(raw) > MAX_ENVELOPE_BYTES:
            size = len(raw) if isinstance(raw, bytes) else 0
            raise MailboxError("oversize", f"an envelope is at most {MAX_ENVELOPE_BYTES} bytes, found {size}")
        try:
            env = Envelope.decode(raw)
        except ChainError as exc:
            raise MailboxError("malformed", f"not a mailbox envelope: {exc}") from None
        if not env.verify(self.chain_id):
            raise MailboxError("bad_signature", f"the envelope's signature does not verify with its sender key "
                                                f"{to_hex(env.sender)} on chain {self.chain_id}")
        sender = self._signer_account(env.sender)
        if sender is None:
            raise MailboxError("unregistered_sender", f"sender key {to_hex(env.sender)} is not the current key of a "
                                                      f"registered account; only members post to the mailbox")
        self._check_recipient(env)
        now = self._now_ms()
        if env.created_ms > now + MAX_CLOCK_SKEW_MS:
            raise MailboxError("from_future", f"the envelope is dated {env.created_ms - now} ms ahead of this node's "
                                              f"clock; at most {MAX_CLOCK_SKEW_MS} ms is allowed")
        expires = env.created_ms + MAILBOX_TTL_MS
        if expires <= now:
            raise MailboxError("expired", f"the envelope was made {now - env.created_ms} ms ago; envelopes are kept "
                                          f"{MAILBOX_TTL_MS} ms (30 days) and this one has expired")
        env_id = env.envelope_id
        if self.kv.get(_INDEX + env_id) is not None:
            return env, False
        if from_client:
            self._take_token(sender, now)
        pair = env.recipient + env.sender
        if self._per_recipient.get(env.recipient, 0) >= MAX_PER_RECIPIENT \
                or self._per_pair.get(pair, 0) >= MAX_PER_SENDER_RECIPIENT:
            self.sweep()
            if self._per_recipient.get(env.recipient, 0) >= MAX_PER_RECIPIENT:
                raise MailboxError("recipient_full", f"account {to_hex(env.recipient)} already has "
                                                     f"{MAX_PER_RECIPIENT} envelopes waiting (MAX_PER_RECIPIENT)")
            if self._per_pair.get(pair, 0) >= MAX_PER_SENDER_RECIPIENT:
                raise MailboxError("sender_quota", f"key {to_hex(env.sender)} already has {MAX_PER_SENDER_RECIPIENT} "
                                                   f"envelopes waiting for account {to_hex(env.recipient)} "
                                                   f"(MAX_PER_SENDER_RECIPIENT)")
        if self.count >= MAX_ENVELOPES:
            self.sweep()
            if self.count >= MAX_ENVELOPES:
                raise MailboxError("mailbox_full", f"this node holds {MAX_ENVELOPES} envelopes (MAX_ENVELOPES); "
                                                   f"try again after older ones expire")
        e = _MS.pack(expires)
        self.kv.write([(_RECIPIENT + env.recipient + e + env_id, raw), (_INDEX + env_id, e + pair),
                       (_EXPIRY + e + env_id, pair)], sync=self.sync_writes)
        self.count += 1
        self._counted(env.recipient, env.sender, +1)
        return env, True

    def _counted(self, recipient: bytes, sender: bytes, delta: int) -> None:
        for counts, key in ((self._per_recipient, recipient), (self._per_pair, recipient + sender)):
            left = counts.get(key, 0) + delta
            if left:
                counts[key] = left
            else:
                counts.pop(key, None)

    def _check_recipient(self, env: Envelope) -> None:
        registered = self._enc_key_of(env.recipient)
        if not registered:
            raise MailboxError("no_encryption_key", f"account {to_hex(env.recipient)} is not registered or has no "
                                                    f"encryption key, so nothing can be sealed to it")
        if registered != env.recipient_key:
            raise MailboxError("wrong_recipient_key", f"the envelope is sealed to {to_hex(env.recipient_key)}, but "
                                                      f"account {to_hex(env.recipient)} has registered "
                                                      f"{to_hex(registered)}")

    def _take_token(self, sender: bytes, now: int) -> None:
        tokens, last = self._buckets.pop(sender, (float(SENDS_PER_MINUTE), now))
        tokens = min(float(SENDS_PER_MINUTE), tokens + (now - last) * SENDS_PER_MINUTE / 60_000)
        if tokens < 1:
            self._buckets[sender] = (tokens, now)
            raise MailboxError("rate_limited", f"account {to_hex(sender)} posts more than {SENDS_PER_MINUTE} "
                                               f"envelopes a minute (SENDS_PER_MINUTE); try again shortly")
        self._buckets[sender] = (tokens - 1, now)
        while len(self._buckets) > MAX_RATE_SENDERS:
            self._buckets.popitem(last=False)

    # --- reading and expiry ------------------------------------------------------------

    def fetch(self, request_raw: bytes) -> list[Envelope]:
        """The live envelopes of the account that signed ``request_raw`` (about its order, or all)."""
        try:
            req = FetchRequest.decode(request_raw)
        except ChainError as exc:
            raise MailboxError("malformed", f"not a mailbox fetch request: {exc}") from None
        if not req.verify(self.chain_id):
            raise MailboxError("bad_signature", "the fetch request's signature does not verify with its signer key")
        if self._signer_account(req.signer) != req.account:
            raise MailboxError("not_recipient", f"key {to_hex(req.signer)} is not the current signing key of account "
                                                f"{to_hex(req.account)}; only the recipient reads its envelopes")
        now = self._now_ms()
        if abs(req.created_ms - now) > MAX_CLOCK_SKEW_MS:
            raise MailboxError("stale_request", f"the fetch request is dated {req.created_ms - now} ms from this "
                                                f"node's clock; at most {MAX_CLOCK_SKEW_MS} ms either way")
        start = _RECIPIENT + req.account + _MS.pack(now + 1)
        found = []
        for _key, raw in self.kv.iterate(prefix=_RECIPIENT + req.account, start=start):
            env = Envelope.decode(raw)
            if req.order and env.order != req.order:
                continue
            found.append(env)
            if len(found) >= MAX_FETCH_ENVELOPES:
                break
        return found

    def recent(self, limit: int = MAX_RESYNC_ENVELOPES) -> list[bytes]:
        """The encodings of the ``limit`` live envelopes that expire last (the newest), newest first."""
        start = _EXPIRY + _MS.pack(self._now_ms() + 1)
        found = []
        for key, pair in self.kv.iterate(prefix=_EXPIRY, start=start, reverse=True):
            if len(found) >= limit:
                break
            e, env_id = key[len(_EXPIRY):len(_EXPIRY) + 8], key[len(_EXPIRY) + 8:]
            raw = self.kv.get(_RECIPIENT + pair[:32] + e + env_id)
            if raw is not None:
                found.append(raw)
        return found

    def sweep(self, limit: int = SWEEP_BATCH) -> int:
        """Delete up to ``limit`` expired envelopes, oldest first; returns how many."""
        now = self._now_ms()
        batch: list[tuple[bytes, bytes | None]] = []
        gone: list[bytes] = []
        for key, pair in self.kv.iterate(prefix=_EXPIRY, stop=_EXPIRY + _MS.pack(now + 1)):
            if len(gone) >= limit:
                break
            e, env_id = key[len(_EXPIRY):len(_EXPIRY) + 8], key[len(_EXPIRY) + 8:]
            batch += [(key, None), (_INDEX + env_id, None), (_RECIPIENT + pair[:32] + e + env_id, None)]
            gone.append(pair)
        if batch:
            self.kv.write(batch, sync=self.sync_writes)
            self.count -= len(gone)
            for pair in gone:
                self._counted(pair[:32], pair[32:], -1)
        return len(gone)
