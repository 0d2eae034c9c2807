"""LSAG ring signatures (ledger/ring.py): round trips, linkability, and every rejection."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st
from nacl import bindings as sodium

from ledger import ring
from ledger.crypto import SigningKey
from ledger.errors import ValidationError

KEYS = [SigningKey.from_label(f"ring-test-{i}") for i in range(ring.MAX_RING_SIZE + 2)]
PUBS = [k.public_key for k in KEYS]
SECRETS = [ring.secret_scalar(k.seed) for k in KEYS]
L = ring.GROUP_ORDER
#: The point of order 2, (0, -1): adding it leaves the prime-order subgroup.
ORDER_TWO = (2**255 - 19 - 1).to_bytes(32, "little")


def signed(signer: int, members: list[int], message: bytes = b"review") -> tuple[list[bytes], bytes, bytes]:
    pubs = [PUBS[i] for i in members]
    image, sig = ring.sign(SECRETS[signer], pubs, message, aux=b"fixed-aux")
    return pubs, image, sig


def test_secret_scalar_is_the_ed25519_key():
    for k, x in zip(KEYS, SECRETS):
        assert ring.public_of(x) == k.public_key


@pytest.mark.parametrize("size", [1, 2, 8, ring.MAX_RING_SIZE])
def test_round_trip_for_every_position(size):
    for signer in {0, size // 2, size - 1}:
        pubs, image, sig = signed(signer, list(range(size)))
        assert len(sig) == ring.signature_bytes(size)
        assert ring.verify(pubs, image, b"review", sig)


def test_tampering_with_anything_bound_fails():
    pubs, image, sig = signed(1, [0, 1, 2, 3])
    assert not ring.verify(pubs, image, b"reviex", sig)  # message (scores, text hash, ...)
    assert not ring.verify(pubs[::-1], image, b"review", sig)  # ring order
    assert not ring.verify(pubs[:3] + [PUBS[9]], image, b"review", sig)  # a member swapped
    assert not ring.verify(pubs, ring.key_image(SECRETS[2]), b"review", sig)  # another key image
    for k in range(0, len(sig), 32):
        flipped = bytearray(sig)
        flipped[k] ^= 1
        assert not ring.verify(pubs, image, b"review", bytes(flipped))


def test_a_non_member_cannot_sign_or_verify():
    with pytest.raises(ValidationError, match="not a member"):
        ring.sign(SECRETS[7], PUBS[:4], b"review")
    # a signature made over a ring containing key 7 does not verify for a ring without it
    pubs, image, sig = signed(7, [0, 1, 2, 7])
    assert not ring.verify(PUBS[:4], image, b"review", sig)


def test_key_image_links_signatures_of_one_key_across_rings_and_messages():
    _, image_a, _ = signed(2, [0, 1, 2], b"first")
    _, image_b, _ = signed(2, [2, 5, 6, 7], b"second")
    _, image_c, _ = signed(3, [2, 3], b"first")
    assert image_a == image_b == ring.key_image(SECRETS[2])
    assert image_c != image_a


def test_signatures_are_randomised_but_verify():
    pubs = PUBS[:3]
    a = ring.sign(SECRETS[0], pubs, b"m")
    b = ring.sign(SECRETS[0], pubs, b"m")
    assert a[0] == b[0] and a[1] != b[1]
    assert ring.verify(pubs, *a[:1], b"m", a[1]) and ring.verify(pubs, b[0], b"m", b[1])


def test_ring_bounds():
    with pytest.raises(ValidationError, match=r"1\.\.16 public keys, found 0"):
        ring.sign(SECRETS[0], [], b"m")
    with pytest.raises(ValidationError, match="found 17"):
        ring.sign(SECRETS[0], PUBS[:17], b"m")
    with pytest.raises(ValidationError, match="distinct"):
        ring.sign(SECRETS[0], [PUBS[0], PUBS[0]], b"m")
    pubs, image, sig = signed(0, [0, 1])
    assert not ring.verify([], image, b"m", sig[:32])
    assert not ring.verify([PUBS[0], PUBS[0]], image, b"review", sig)


def test_non_reduced_scalars_are_refused():
    pubs, image, sig = signed(0, [0, 1, 2])
    for k in range(0, len(sig), 32):
        s = int.from_bytes(sig[k:k + 32], "little")
        malleated = sig[:k] + (s + L).to_bytes(32, "little") + sig[k + 32:]
        assert not ring.verify(pubs, image, b"review", malleated)  # same residue, second encoding


def test_non_canonical_and_small_order_points_are_refused():
    pubs, image, sig = signed(0, [0, 1, 2])
    identity = b"\x01" + bytes(31)
    y_above_p = (2**255 - 19 + 1).to_bytes(32, "little")  # encodes y = 1 again: non-canonical
    torsioned = sodium.crypto_core_ed25519_add(image, ORDER_TWO)
    for bad in (identity, y_above_p, ORDER_TWO, torsioned, bytes(32)):
        assert not ring.verify(pubs, bad, b"review", sig)  # as key image: a second image of one key
        assert not ring.verify([bad] + pubs[1:], image, b"review", sig)  # as a ring member
        with pytest.raises(ValidationError, match="not a canonical"):
            ring.check_ring([bad, PUBS[1]])


def test_wrong_lengths_and_types_are_false_not_errors():
    pubs, image, sig = signed(0, [0, 1])
    assert not ring.verify(pubs, image, b"review", sig[:-1])
    assert not ring.verify(pubs, image, b"review", sig + b"\x00")
    assert not ring.verify(pubs, image[:31], b"review", sig)
    assert not ring.verify(pubs, image, "review", sig)  # type: ignore[arg-type]
    assert not ring.verify(tuple(pubs), image, b"review", sig)  # type: ignore[arg-type]
    assert not ring.verify(pubs, image, b"review", None)  # type: ignore[arg-type]


def test_secret_must_be_reduced_and_non_zero():
    with pytest.raises(ValidationError, match="non-zero scalar"):
        ring.sign(bytes(32), PUBS[:2], b"m")
    with pytest.raises(ValidationError, match="non-zero scalar"):
        ring.sign((int.from_bytes(SECRETS[0], "little") + L).to_bytes(32, "little"), PUBS[:2], b"m")


@settings(max_examples=25)
@given(st.lists(st.integers(0, len(KEYS) - 1), min_size=1, max_size=6, unique=True), st.data(), st.binary(max_size=64))
def test_any_member_of_any_ring_signs_and_no_outsider_verifies(members, data, message):
    signer = data.draw(st.sampled_from(members))
    pubs, image, sig = signed(signer, members, message)
    assert ring.verify(pubs, image, message, sig)
    assert image == ring.key_image(SECRETS[signer])
    outsiders = [i for i in range(len(KEYS)) if i not in members]
    outsider = data.draw(st.sampled_from(outsiders))
    with pytest.raises(ValidationError):
        ring.sign(SECRETS[outsider], pubs, message)
    # the outsider signs over a ring it belongs to, then claims the original ring: never verifies
    own = pubs[:-1] + [PUBS[outsider]]
    o_image, o_sig = ring.sign(SECRETS[outsider], own, message, aux=b"x")
    assert ring.verify(own, o_image, message, o_sig)
    assert not ring.verify(pubs, o_image, message, o_sig)


def test_hash_to_point_and_key_image_are_pinned():
    """Consensus depends on these bytes (libsodium's Elligator 2 map and our domain tags): a
    library or tag change that moves them must fail here, not split validators."""
    k = SigningKey.from_label("ring-vector")
    assert k.public_key.hex() == "fd2a961761281da6976a570029690e80138e3e7562a26f5d06991e09480d512c"
    assert ring.hash_to_point(k.public_key).hex() == \
        "e3e8bfcfe491a06d17ffbfeeb9db9af08192210ed6005fa873302246b75d1232"
    assert ring.key_image(ring.secret_scalar(k.seed)).hex() == \
        "3fef163928c3d75115f89955825394c5c35ededd0f7d4c45dabd21c39f8470a4"
