"""Linkable ring signatures (LSAG) over ed25519, for reviews that name no buyer.

How it works (Liu, Wei and Wong 2004, in the form Monero's MLSAG takes with one key;
"bLSAG" in Zero to Monero, section 3.4). A ring is K distinct ed25519 public keys
P_0..P_{K-1}; the signer holds the scalar x of one of them, P_pi = x*G. The key
image I = x*Hp(P_pi) depends on the key only, so two signatures by the same key
carry the same I (they are *linkable*) while I reveals nothing about which P_pi it
belongs to. Signing picks a nonce a, sets L_pi = a*G, R_pi = a*Hp(P_pi) and walks the
ring from pi+1 with random responses s_i:

    L_i = s_i*G + c_i*P_i        R_i = s_i*Hp(P_i) + c_i*I
    c_{i+1} = Hs(prefix || L_i || R_i)

and closes it with s_pi = a - c_pi*x, so that the walk from c_0 comes back to c_0.
``prefix`` is SHA-512 of the domain tag, the ring, the key image and the message, so
the signature binds all of them: a relayer can change none of them. Verification
recomputes the walk and checks that it closes.

Encodings: points are 32-byte ed25519 encodings, scalars 32-byte little-endian
integers below the group order l. A signature is c_0 || s_0 || ... || s_{K-1}
(32*(K+1) bytes). Hs is SHA-512 reduced mod l; Hp is libsodium's Elligator 2 map
(``crypto_core_ed25519_from_uniform``, which clears the cofactor) of the first 32
bytes of a domain-separated SHA-512 of the point.

Checks that keep linkability honest: every ring member and the key image must be a
canonical encoding of a point of the prime-order subgroup other than the identity
(``crypto_core_ed25519_is_valid_point``); otherwise adding a small-order point to I
would give the same key a second, unlinkable image. Every scalar must be reduced
(< l), so a signature has one encoding. Ring members are distinct and their number
is MIN_RING_SIZE..MAX_RING_SIZE. ``verify`` never raises: any bad input is False.

The per-order review key is an ordinary ed25519 key (``SigningKey``): its scalar is
the clamped first half of SHA-512(seed), reduced mod l (``secret_scalar``), and
signing checks x*G equals the public key, so the order's commitment
sha256(review public key) is unchanged. This module runs in pure Python around
libsodium and is not constant-time: sign on the reviewer's own machine.
"""

from __future__ import annotations

import hashlib

from nacl import bindings as sodium
from nacl.exceptions import CryptoError, RuntimeError as SodiumRuntimeError

from ledger.errors import ValidationError

#: Domain tag of the ring signature's challenge hash.
DOMAIN_LSAG = b"shopchain/lsag/v1"
#: Domain tag of hashing a public key to a point (the base of its key image).
DOMAIN_HASH_TO_POINT = b"shopchain/lsag-hp/v1"
#: Fewest members a ring may have (1 is a plain, linkable signature; contracts ask for more).
MIN_RING_SIZE = 1
#: Most members a ring may have: verification costs about 7 ed25519 verifications per member.
MAX_RING_SIZE = 16
POINT_BYTES = 32
SCALAR_BYTES = 32
#: The order l of the ed25519 prime-order subgroup.
GROUP_ORDER = 2**252 + 27742317777372353535851937790883648493

_ZERO32 = bytes(32)


def signature_bytes(ring_size: int) -> int:
    """Length of a signature over a ring of ``ring_size`` keys: c_0 and one response per member."""
    return SCALAR_BYTES * (ring_size + 1)


def _reduce64(data: bytes) -> bytes:
    return sodium.crypto_core_ed25519_scalar_reduce(data)


def is_canonical_scalar(s: bytes) -> bool:
    """True for a 32-byte little-endian integer below l (the one encoding of its residue)."""
    return type(s) is bytes and len(s) == SCALAR_BYTES and int.from_bytes(s, "little") < GROUP_ORDER


def is_valid_point(p: bytes) -> bool:
    """True for a canonical encoding of a prime-order-subgroup point other than the identity."""
    return (type(p) is bytes and len(p) == POINT_BYTES and p != _identity_encoding()
            and bool(sodium.crypto_core_ed25519_is_valid_point(p)))


def _identity_encoding() -> bytes:
    return b"\x01" + bytes(31)


def hash_to_point(public_key: bytes) -> bytes:
    """Hp(P): a point of the prime-order subgroup whose discrete log nobody knows."""
    digest = hashlib.sha512(DOMAIN_HASH_TO_POINT + public_key).digest()
    return sodium.crypto_core_ed25519_from_uniform(digest[:POINT_BYTES])


def _hash_scalar(*parts: bytes) -> bytes:
    h = hashlib.sha512()
    for part in parts:
        h.update(part)
    return _reduce64(h.digest())


def _prefix(ring: list[bytes], key_image: bytes, message: bytes) -> bytes:
    """SHA-512 of everything the signature binds except the per-member commitments."""
    h = hashlib.sha512(DOMAIN_LSAG)
    h.update(bytes([len(ring)]))
    for p in ring:
        h.update(p)
    h.update(key_image)
    h.update(len(message).to_bytes(8, "big"))
    h.update(message)
    return h.digest()


def secret_scalar(seed: bytes) -> bytes:
    """The ed25519 secret scalar of a 32-byte seed, reduced mod l (x with x*G = the public key)."""
    if type(seed) is not bytes or len(seed) != 32:
        raise ValidationError(f"an ed25519 seed is 32 bytes, found {len(seed) if isinstance(seed, bytes) else type(seed).__name__}")
    a = bytearray(hashlib.sha512(seed).digest()[:32])
    a[0] &= 248
    a[31] &= 127
    a[31] |= 64
    return _reduce64(bytes(a) + _ZERO32)


def public_of(secret: bytes) -> bytes:
    """x*G for a reduced, non-zero scalar x."""
    return sodium.crypto_scalarmult_ed25519_base_noclamp(secret)


def key_image(secret: bytes) -> bytes:
    """I = x*Hp(x*G): the same for every signature by this key, and for no other key."""
    return sodium.crypto_scalarmult_ed25519_noclamp(secret, hash_to_point(public_of(secret)))


def check_ring(ring: list[bytes]) -> None:
    """Raise ValidationError unless ``ring`` is MIN..MAX distinct valid public keys."""
    if type(ring) is not list or not MIN_RING_SIZE <= len(ring) <= MAX_RING_SIZE:
        found = len(ring) if isinstance(ring, list) else type(ring).__name__
        raise ValidationError(f"a ring has {MIN_RING_SIZE}..{MAX_RING_SIZE} public keys, found {found}")
    for i, p in enumerate(ring):
        if not is_valid_point(p):
            raise ValidationError(f"ring member {i} is not a canonical ed25519 point of the prime-order subgroup: "
                                  f"{p.hex() if isinstance(p, bytes) else type(p).__name__}")
    if len(set(ring)) != len(ring):
        raise ValidationError("ring members must be distinct public keys")


def _commit(s: bytes, c: bytes, p: bytes, hp: bytes, image: bytes) -> tuple[bytes, bytes]:
    """(L, R) = (s*G + c*P, s*Hp(P) + c*I)."""
    left = sodium.crypto_core_ed25519_add(sodium.crypto_scalarmult_ed25519_base_noclamp(s),
                                          sodium.crypto_scalarmult_ed25519_noclamp(c, p))
    right = sodium.crypto_core_ed25519_add(sodium.crypto_scalarmult_ed25519_noclamp(s, hp),
                                           sodium.crypto_scalarmult_ed25519_noclamp(c, image))
    return left, right


def sign(secret: bytes, ring: list[bytes], message: bytes, aux: bytes | None = None) -> tuple[bytes, bytes]:
    """(key image, signature) by the holder of ``secret``, whose public key is in ``ring``.

    ``aux`` is the signer's fresh randomness (default: 32 bytes from the OS); nonces are
    derived from it, the secret and the message, so a weak ``aux`` alone does not leak
    the key. Raises ValidationError when the ring is malformed or holds not the key.
    """
    check_ring(ring)
    if not is_canonical_scalar(secret) or secret == _ZERO32:
        raise ValidationError("the secret must be a non-zero scalar below the group order (see secret_scalar)")
    if type(message) is not bytes:
        raise ValidationError(f"the message must be bytes, found {type(message).__name__}")
    mine = public_of(secret)
    if mine not in ring:
        raise ValidationError(f"the signing key {mine.hex()} is not a member of the ring")
    pi = ring.index(mine)
    image = key_image(secret)
    prefix = _prefix(ring, image, message)
    if aux is None:
        import os  # the OS RNG for a signer's nonce; verification (what contracts run) never draws randomness

        aux = os.urandom(32)
    seed = hashlib.sha512(b"shopchain/lsag-nonce/v1" + secret + prefix + aux).digest()
    for attempt in range(8):  # a zero scalar or an identity sum has probability ~2^-250 per try
        try:
            return image, _sign_once(secret, ring, pi, image, prefix, seed + bytes([attempt]))
        except (CryptoError, SodiumRuntimeError, ValueError):
            continue
    raise ValidationError("ring signing failed 8 times in a row: the randomness source is broken")


def _sign_once(secret: bytes, ring: list[bytes], pi: int, image: bytes, prefix: bytes, seed: bytes) -> bytes:
    n = len(ring)
    nonce = _hash_scalar(seed, b"a")
    responses = [_hash_scalar(seed, b"s", bytes([i])) for i in range(n)]
    challenges: list[bytes] = [b""] * n
    hp_mine = hash_to_point(ring[pi])
    challenges[(pi + 1) % n] = _hash_scalar(prefix, sodium.crypto_scalarmult_ed25519_base_noclamp(nonce),
                                            sodium.crypto_scalarmult_ed25519_noclamp(nonce, hp_mine))
    i = (pi + 1) % n
    while i != pi:
        left, right = _commit(responses[i], challenges[i], ring[i], hash_to_point(ring[i]), image)
        challenges[(i + 1) % n] = _hash_scalar(prefix, left, right)
        i = (i + 1) % n
    responses[pi] = sodium.crypto_core_ed25519_scalar_sub(
        nonce, sodium.crypto_core_ed25519_scalar_mul(challenges[pi], secret))
    return challenges[0] + b"".join(responses)


def verify(ring: list[bytes], image: bytes, message: bytes, signature: bytes) -> bool:
    """True when ``signature`` is by the key behind ``image``, one of ``ring``, over ``message``.

    False (never an exception) for any malformed input: ring size or members, key
    image, non-reduced scalars, wrong length.
    """
    try:
        check_ring(ring)
    except ValidationError:
        return False
    if not is_valid_point(image) or type(message) is not bytes:
        return False
    n = len(ring)
    if type(signature) is not bytes or len(signature) != signature_bytes(n):
        return False
    scalars = [signature[k:k + SCALAR_BYTES] for k in range(0, len(signature), SCALAR_BYTES)]
    if not all(is_canonical_scalar(s) for s in scalars):
        return False
    prefix = _prefix(ring, image, message)
    c0 = scalars[0]
    c = c0
    try:
        for i in range(n):
            left, right = _commit(scalars[i + 1], c, ring[i], hash_to_point(ring[i]), image)
            c = _hash_scalar(prefix, left, right)
    except (CryptoError, SodiumRuntimeError, ValueError):
        return False  # a zero scalar or an identity partial sum: never in an honest signature
    return c == c0
