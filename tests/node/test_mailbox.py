"""The node's mailbox of sealed envelopes: admission rules, limits, fetch and expiry (node/mailbox.py)."""

from __future__ import annotations

import pytest

from ledger.crypto import SigningKey
from ledger.mailbox import MAX_ENVELOPE_BYTES, Envelope, make_envelope, make_fetch_request
from ledger.privacy import encryption_key_from_seed, encryption_public_key, open_sealed, seal
from ledger.storage.kv import MemoryKV
from node import mailbox as mb
from node.mailbox import MAILBOX_TTL_MS, MAX_CLOCK_SKEW_MS, Mailbox, MailboxError

CHAIN = "mailbox-test"
T0 = 1_800_000_000_000
BUYER, MERCHANT, STRANGER, NO_ENC = (SigningKey.from_label(n) for n in ("buyer", "merchant", "stranger", "no-enc"))


class World:
    """A mailbox over an in-memory store with a registry of three accounts and a hand-moved clock."""

    def __init__(self, kv: MemoryKV | None = None) -> None:
        self.now = T0
        self.registered = {k.public_key: k.public_key for k in (BUYER, MERCHANT, NO_ENC)}
        self.enc = {BUYER.public_key: encryption_public_key(BUYER.seed),
                    MERCHANT.public_key: encryption_public_key(MERCHANT.seed), NO_ENC.public_key: b""}
        self.kv = kv or MemoryKV()
        self.box = Mailbox(self.kv, CHAIN, self.registered.get, self.enc.get, lambda: self.now)

    def envelope(self, sender: SigningKey = BUYER, to: SigningKey = MERCHANT, order: int = 1, payload: bytes = b"hi",
                 created: int | None = None, kind: str = "delivery", chain: str = CHAIN) -> bytes:
        key = encryption_public_key(to.seed)
        return make_envelope(sender, chain, to.public_key, key, order, kind, self.now if created is None else created,
                             seal(key, payload)).encode()

    def fetch(self, who: SigningKey = MERCHANT, order: int = 0, signer: SigningKey | None = None) -> list[Envelope]:
        return self.box.fetch(make_fetch_request(signer or who, CHAIN, who.public_key, order, self.now).encode())


def refused(world: World, raw: bytes) -> str:
    with pytest.raises(MailboxError) as info:
        world.box.post(raw)
    return info.value.reason


def test_post_fetch_open_and_duplicates_are_harmless():
    w = World()
    raw = w.envelope(payload=b"fields and salts")
    env, new = w.box.post(raw)
    assert new and w.box.post(raw) == (env, False) and w.box.count == 1
    (got,) = w.fetch()
    assert got == env and got.verify(CHAIN)
    assert open_sealed(encryption_key_from_seed(MERCHANT.seed), got.ciphertext) == b"fields and salts"
    assert w.fetch(order=2) == [] and w.fetch(who=BUYER) == []


def test_refusals_name_the_rule():
    w = World()
    assert refused(w, b"\x00" * (MAX_ENVELOPE_BYTES + 1)) == "oversize"
    assert refused(w, b"not msgpack") == "malformed"
    assert refused(w, w.envelope(sender=STRANGER)) == "unregistered_sender"
    assert refused(w, w.envelope(to=NO_ENC)) == "no_encryption_key"
    assert refused(w, w.envelope(to=STRANGER)) == "no_encryption_key"
    assert refused(w, w.envelope(chain="other-chain")) == "bad_signature"
    assert refused(w, w.envelope(created=T0 - MAILBOX_TTL_MS)) == "expired"
    assert refused(w, w.envelope(created=T0 + MAX_CLOCK_SKEW_MS + 1)) == "from_future"
    stale_key = make_envelope(BUYER, CHAIN, MERCHANT.public_key, encryption_public_key(STRANGER.seed), 1, "delivery",
                              T0, b"x").encode()
    assert refused(w, stale_key) == "wrong_recipient_key"
    tampered = bytearray(w.envelope())
    tampered[-70] ^= 1          # a byte of the ciphertext: the signature no longer covers it
    assert refused(w, bytes(tampered)) == "bad_signature"
    assert w.box.count == 0


def test_an_envelope_past_the_size_limit_is_refused_by_its_sender_too():
    w = World()
    with pytest.raises(Exception, match=f"at most {MAX_ENVELOPE_BYTES} bytes"):
        w.envelope(payload=b"x" * MAX_ENVELOPE_BYTES)


def test_fetch_is_for_the_recipient_only():
    w = World()
    w.box.post(w.envelope())
    with pytest.raises(MailboxError) as info:
        w.fetch(who=MERCHANT, signer=BUYER)      # the buyer asks for the merchant's mail
    assert info.value.reason == "not_recipient"
    old = make_fetch_request(MERCHANT, CHAIN, MERCHANT.public_key, 0, T0 - MAX_CLOCK_SKEW_MS - 1).encode()
    with pytest.raises(MailboxError) as info:
        w.box.fetch(old)
    assert info.value.reason == "stale_request"


def test_rate_limit_per_sender_refills_over_time(monkeypatch):
    monkeypatch.setattr(mb, "SENDS_PER_MINUTE", 3)
    w = World()
    for i in range(3):
        w.box.post(w.envelope(order=i + 1))
    assert refused(w, w.envelope(order=9)) == "rate_limited"
    w.now += 20_000                                # one token back after 60 s / 3
    assert w.box.post(w.envelope(order=9))[1]


def test_recipient_quota_and_store_limit(monkeypatch):
    monkeypatch.setattr(mb, "MAX_PER_RECIPIENT", 2)
    w = World()
    w.box.post(w.envelope(order=1))
    w.box.post(w.envelope(order=2, sender=NO_ENC))
    assert refused(w, w.envelope(order=3)) == "recipient_full"
    assert w.box.post(w.envelope(to=BUYER, sender=MERCHANT))[1]    # another recipient still has room
    monkeypatch.setattr(mb, "MAX_ENVELOPES", 3)
    assert refused(w, w.envelope(to=BUYER, sender=MERCHANT, order=5)) == "mailbox_full"
    w.now += MAILBOX_TTL_MS                          # all expire: a full recipient is swept, then has room again
    assert w.box.post(w.envelope(order=6))[1] and w.box.count == 1
    reopened = World(w.kv)
    reopened.now = w.now
    assert reopened.box.count == 1 and reopened.box.post(reopened.envelope(order=7))[1]
    assert refused(reopened, reopened.envelope(order=8)) == "recipient_full"   # the quota counts are rebuilt at open


def test_one_sender_cannot_fill_a_recipients_mailbox(monkeypatch):
    monkeypatch.setattr(mb, "MAX_PER_SENDER_RECIPIENT", 2)
    w = World()
    w.box.post(w.envelope(order=1))
    w.box.post(w.envelope(order=2))
    assert refused(w, w.envelope(order=3)) == "sender_quota"
    assert w.box.post(w.envelope(order=3, sender=NO_ENC))[1]         # others still reach the merchant
    assert w.box.post(w.envelope(order=3, to=BUYER))[1]               # and the sender still reaches others
    w.now += MAILBOX_TTL_MS
    assert w.box.post(w.envelope(order=4))[1]                          # room again once its envelopes expire


def test_expired_envelopes_are_swept_and_no_longer_served():
    w = World()
    w.box.post(w.envelope(order=1))
    w.now += 1000
    w.box.post(w.envelope(order=2))
    w.now = T0 + MAILBOX_TTL_MS                     # the first one's last millisecond has passed
    assert [e.order for e in w.fetch()] == [2]
    assert w.box.sweep() == 1 and w.box.count == 1
    assert len(list(w.kv.iterate())) == 3           # the second one's three records, nothing of the first
    w.now += 1000
    assert w.box.sweep() == 1 and w.box.count == 0 and list(w.kv.iterate()) == []


def test_the_count_survives_a_restart():
    w = World()
    w.box.post(w.envelope(order=1))
    w.box.post(w.envelope(order=2))
    assert World(w.kv).box.count == 2


def test_recent_envelopes_for_a_reconnecting_peer_and_relays_skip_the_rate(monkeypatch):
    monkeypatch.setattr(mb, "SENDS_PER_MINUTE", 2)
    w = World()
    posted = []
    for i in range(2):
        posted.append(w.envelope(order=i + 1))
        w.box.post(posted[-1])
        w.now += 1
    assert w.box.recent() == posted[::-1] and w.box.recent(1) == [posted[-1]]
    peer = World()                                   # a node that missed them gets them relayed, beyond the rate
    peer.now = w.now
    third = w.envelope(order=3)
    assert refused(w, third) == "rate_limited"
    for raw in w.box.recent() + [third]:
        assert peer.box.post(raw, from_client=False)[1]
    assert peer.box.count == 3
    w.now = T0 + MAILBOX_TTL_MS                      # the first has expired: it is not sent any more
    assert w.box.recent() == [posted[1]]
