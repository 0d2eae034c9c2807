"""An encrypted keystore: one file per named ed25519 key, sealed with a password.

How it works: a key's 32-byte seed is encrypted with a key derived from the password
by argon2id (libsodium's ``crypto_pwhash``, via pynacl) under a fresh random salt, then
sealed with XSalsa20-Poly1305 (``nacl.secret.SecretBox``: authenticated, so a wrong
password or a flipped bit is detected, never silently decrypted to a different key).
The public key is stored in clear beside it, so listing keys and naming accounts
needs no password; after decryption the seed must derive that same public key. So is
the account's X25519 encryption public key, derived from the same seed
(ledger.privacy.encryption_key_from_seed): one secret yields both keys, so nothing
more needs a backup, and ``keys show`` names the key to register (``enc_key``).

A file ``<dir>/<name>.json`` is written with mode 0600 before any byte is written,
into a directory made with mode 0700; nothing ever overwrites an existing key. The
KDF parameters are stored in each file, so they can be raised later without breaking
old files. File layout (JSON)::

    {"version": 1, "name": ..., "type": "ed25519", "public_key": "0x..", "encryption_key": "0x..",
     "kdf": {"name": "argon2id", "opslimit": N, "memlimit": N, "salt": "0x.."},
     "cipher": {"name": "xsalsa20poly1305", "nonce": "0x..", "ciphertext": "0x.."}}
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass

import nacl.exceptions
import nacl.pwhash.argon2id as argon2id
import nacl.secret
import nacl.utils

from ledger.crypto import SigningKey
from ledger.errors import ChainError
from ledger.hexfmt import to_hex
from ledger.privacy import encryption_public_key

KEYSTORE_VERSION = 1
#: Default keystore directory (``--keystore`` / SHOPCHAIN_KEYSTORE override it).
DEFAULT_KEYSTORE_DIR = os.path.join(os.path.expanduser("~"), ".shopchain", "keys")
KEY_FILE_MODE = 0o600
KEYSTORE_DIR_MODE = 0o700
#: argon2id cost: libsodium's "interactive" level (64 MiB, 2 passes), well under a second.
KDF_OPSLIMIT = argon2id.OPSLIMIT_INTERACTIVE
KDF_MEMLIMIT = argon2id.MEMLIMIT_INTERACTIVE
#: Upper bounds accepted when reading a file (a hostile file must not exhaust memory).
MAX_KDF_OPSLIMIT = argon2id.OPSLIMIT_SENSITIVE
MAX_KDF_MEMLIMIT = argon2id.MEMLIMIT_SENSITIVE
#: Shortest password accepted for a new key.
MIN_PASSWORD_CHARS = 8
#: Key names: what a user types after --key.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
#: Largest keystore file read (a real one is under 1 KiB).
MAX_KEY_FILE_BYTES = 64 * 1024


class KeystoreError(ChainError):
    """A keystore operation failed; the message says what to do."""


class WrongPassword(KeystoreError):
    """The password does not open this key (or the file was altered)."""


@dataclass(frozen=True)
class StoredKey:
    name: str
    public_key: bytes
    path: str
    encryption_key: bytes | None = None   # None: a file written before encryption keys were recorded


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name or ""):
        raise KeystoreError(f"key name {name!r}: expected 1-64 letters, digits, '.', '_' or '-' "
                            f"(starting with a letter or digit)")
    return name


def _derive(password: str, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    return argon2id.kdf(nacl.secret.SecretBox.KEY_SIZE, password.encode("utf-8"), salt,
                        opslimit=opslimit, memlimit=memlimit)


def seal_key(name: str, key: SigningKey, password: str, opslimit: int = KDF_OPSLIMIT,
             memlimit: int = KDF_MEMLIMIT) -> dict:
    """The JSON document holding ``key`` encrypted under ``password``."""
    salt = nacl.utils.random(argon2id.SALTBYTES)
    box = nacl.secret.SecretBox(_derive(password, salt, opslimit, memlimit))
    nonce = nacl.utils.random(nacl.secret.SecretBox.NONCE_SIZE)
    sealed = box.encrypt(key.seed, nonce)
    return {"version": KEYSTORE_VERSION, "name": name, "type": "ed25519", "public_key": to_hex(key.public_key),
            "encryption_key": to_hex(encryption_public_key(key.seed)),
            "kdf": {"name": "argon2id", "opslimit": opslimit, "memlimit": memlimit, "salt": to_hex(salt)},
            "cipher": {"name": "xsalsa20poly1305", "nonce": to_hex(nonce),
                       "ciphertext": to_hex(sealed.ciphertext)}}


def _unhex(doc: dict, *path: str) -> bytes:
    value = doc
    for part in path:
        value = value[part]
    if not isinstance(value, str) or not value.startswith("0x"):
        raise ValueError(f"{'.'.join(path)} is not 0x-hex")
    return bytes.fromhex(value[2:])


def open_key(doc: dict, password: str, where: str) -> SigningKey:
    """Decrypt a keystore document; WrongPassword if the password (or the file) is wrong."""
    try:
        if doc.get("version") != KEYSTORE_VERSION or doc["kdf"]["name"] != "argon2id" \
                or doc["cipher"]["name"] != "xsalsa20poly1305":
            raise ValueError(f"unsupported version/kdf/cipher (this shopchain reads version {KEYSTORE_VERSION}, "
                             f"argon2id, xsalsa20poly1305)")
        opslimit, memlimit = doc["kdf"]["opslimit"], doc["kdf"]["memlimit"]
        if type(opslimit) is not int or type(memlimit) is not int or not 1 <= opslimit <= MAX_KDF_OPSLIMIT \
                or not argon2id.MEMLIMIT_MIN <= memlimit <= MAX_KDF_MEMLIMIT:
            raise ValueError(f"KDF parameters out of range (opslimit {opslimit}, memlimit {memlimit})")
        salt, nonce = _unhex(doc, "kdf", "salt"), _unhex(doc, "cipher", "nonce")
        ciphertext, public = _unhex(doc, "cipher", "ciphertext"), _unhex(doc, "public_key")
    except (KeyError, TypeError, ValueError) as exc:
        raise KeystoreError(f"{where} is not a shopchain keystore file: {exc}") from None
    box = nacl.secret.SecretBox(_derive(password, salt, opslimit, memlimit))
    try:
        seed = box.decrypt(ciphertext, nonce)
    except nacl.exceptions.CryptoError:
        raise WrongPassword(f"the password does not open {where} (or the file was modified); "
                            f"try again, or check SHOPCHAIN_PASSWORD / --password-file") from None
    key = SigningKey(seed)
    if key.public_key != public:
        raise KeystoreError(f"{where}: the decrypted key does not match its public key; the file is damaged")
    return key


class Keystore:
    """The directory of encrypted keys."""

    def __init__(self, directory: str) -> None:
        self.directory = os.path.abspath(os.path.expanduser(directory))

    def path(self, name: str) -> str:
        return os.path.join(self.directory, check_name(name) + ".json")

    def _read(self, name: str) -> dict:
        path = self.path(name)
        try:
            if os.path.getsize(path) > MAX_KEY_FILE_BYTES:
                raise KeystoreError(f"{path} is larger than {MAX_KEY_FILE_BYTES} bytes; not a keystore file")
            with open(path) as fh:
                doc = json.load(fh)
        except FileNotFoundError:
            known = ", ".join(k.name for k in self.list()) or "none"
            raise KeystoreError(f"no key named {name!r} in {self.directory} (keys there: {known}); "
                                f"create one with `shopchain keys new {name}` or import it with "
                                f"`shopchain keys import {name} FILE`") from None
        except (OSError, ValueError) as exc:
            raise KeystoreError(f"cannot read {path}: {exc}") from None
        if not isinstance(doc, dict):
            raise KeystoreError(f"{path} is not a shopchain keystore file")
        return doc

    def list(self) -> list[StoredKey]:
        if not os.path.isdir(self.directory):
            return []
        keys = []
        for entry in sorted(os.listdir(self.directory)):
            name = entry[:-5]
            if not entry.endswith(".json") or not NAME_PATTERN.match(name):
                continue
            try:
                with open(os.path.join(self.directory, entry)) as fh:
                    doc = json.load(fh)
                public = _unhex(doc, "public_key")
                enc = _unhex(doc, "encryption_key") if "encryption_key" in doc else None
            except (OSError, ValueError, KeyError, TypeError):
                continue  # not ours; `keys list` shows only readable keystore files
            keys.append(StoredKey(name, public, os.path.join(self.directory, entry), enc))
        return keys

    def public_key(self, name: str) -> bytes:
        try:
            return _unhex(self._read(name), "public_key")
        except (KeyError, TypeError, ValueError) as exc:
            raise KeystoreError(f"{self.path(name)} has no readable public key: {exc}") from None

    def encryption_key(self, name: str) -> bytes | None:
        """The recorded X25519 public key of NAME (None for a file from before they were recorded)."""
        doc = self._read(name)
        try:
            return _unhex(doc, "encryption_key") if "encryption_key" in doc else None
        except (TypeError, ValueError) as exc:
            raise KeystoreError(f"{self.path(name)} has an unreadable encryption_key: {exc}") from None

    def exists(self, name: str) -> bool:
        return os.path.exists(self.path(name))

    def add(self, name: str, key: SigningKey, password: str) -> StoredKey:
        """Encrypt and store ``key``; never overwrites."""
        if len(password) < MIN_PASSWORD_CHARS:
            raise KeystoreError(f"the password must have at least {MIN_PASSWORD_CHARS} characters, "
                                f"found {len(password)}")
        path = self.path(name)
        for existing in self.list():
            if existing.public_key == key.public_key:
                raise KeystoreError(f"this key is already stored as {existing.name!r}")
        os.makedirs(self.directory, mode=KEYSTORE_DIR_MODE, exist_ok=True)
        doc = seal_key(name, key, password)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
        except FileExistsError:
            raise KeystoreError(f"a key named {name!r} already exists in {self.directory}; "
                                f"pick another name or `shopchain keys delete {name}` first") from None
        with os.fdopen(fd, "w") as fh:
            json.dump(doc, fh, indent=2)
            fh.write("\n")
        return StoredKey(name, key.public_key, path, encryption_public_key(key.seed))

    def load(self, name: str, password: str) -> SigningKey:
        return open_key(self._read(name), password, self.path(name))

    def delete(self, name: str, password: str) -> None:
        """Remove a key; the password must open it first (a typo must not destroy the wrong key)."""
        self.load(name, password)
        os.remove(self.path(name))
