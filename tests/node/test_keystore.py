"""The encrypted keystore: round trips, wrong passwords, tampering, permissions."""

from __future__ import annotations

import json
import os
import stat

import pytest

from ledger.crypto import SigningKey
from node.ops.keystore import Keystore, KeystoreError, WrongPassword, open_key

PASSWORD = "correct horse battery"


def test_round_trip_keeps_the_key_and_the_file_is_private(tmp_path):
    store = Keystore(str(tmp_path / "keys"))
    key = SigningKey.generate()
    stored = store.add("alice", key, PASSWORD)
    assert stat.S_IMODE(os.stat(stored.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(store.directory).st_mode) == 0o700
    assert store.load("alice", PASSWORD).seed == key.seed
    assert store.public_key("alice") == key.public_key
    assert [k.name for k in store.list()] == ["alice"]
    text = open(stored.path).read()
    assert key.seed.hex() not in text  # the secret is not in the file in clear
    assert key.public_key.hex() in text


def test_wrong_password_and_tampered_files_are_refused(tmp_path):
    store = Keystore(str(tmp_path))
    key = SigningKey.generate()
    stored = store.add("bob", key, PASSWORD)
    with pytest.raises(WrongPassword, match="does not open"):
        store.load("bob", PASSWORD + "x")
    doc = json.loads(open(stored.path).read())
    ct = bytearray(bytes.fromhex(doc["cipher"]["ciphertext"][2:]))
    ct[0] ^= 1
    doc["cipher"]["ciphertext"] = "0x" + ct.hex()
    with pytest.raises(WrongPassword):
        open_key(doc, PASSWORD, "tampered")
    other = json.loads(open(stored.path).read())
    other["public_key"] = "0x" + SigningKey.generate().public_key.hex()
    with pytest.raises(KeystoreError, match="does not match its public key"):
        open_key(other, PASSWORD, "swapped")
    hostile = json.loads(open(stored.path).read())
    hostile["kdf"]["memlimit"] = 2**40
    with pytest.raises(KeystoreError, match="out of range"):
        open_key(hostile, PASSWORD, "hostile")


def test_no_overwrite_no_duplicates_bad_names_short_passwords(tmp_path):
    store = Keystore(str(tmp_path))
    key = SigningKey.generate()
    store.add("carol", key, PASSWORD)
    with pytest.raises(KeystoreError, match="already exists"):
        store.add("carol", SigningKey.generate(), PASSWORD)
    with pytest.raises(KeystoreError, match="already stored as 'carol'"):
        store.add("carol2", key, PASSWORD)
    with pytest.raises(KeystoreError, match="key name"):
        store.add("../evil", SigningKey.generate(), PASSWORD)
    with pytest.raises(KeystoreError, match="at least 8"):
        store.add("dave", SigningKey.generate(), "short")
    with pytest.raises(KeystoreError, match="no key named 'nobody'.*keys there: carol"):
        store.load("nobody", PASSWORD)


def test_delete_needs_the_password_and_list_skips_foreign_files(tmp_path):
    store = Keystore(str(tmp_path))
    store.add("erin", SigningKey.generate(), PASSWORD)
    (tmp_path / "notes.json").write_text("[1, 2]")
    (tmp_path / "readme.txt").write_text("hello")
    assert [k.name for k in store.list()] == ["erin"]
    with pytest.raises(WrongPassword):
        store.delete("erin", "not the password")
    assert store.exists("erin")
    store.delete("erin", PASSWORD)
    assert not store.exists("erin")
