"""Bytes as 0x-hex: the one spelling of the JSON/CLI/file convention (DESIGN §8).

``to_hex`` is what every JSON view, CLI output, key file and manifest writes for bytes:
"0x" followed by lowercase hex digits, two per byte.
"""

from __future__ import annotations


def to_hex(data: bytes) -> str:
    """``data`` as "0x"-prefixed lowercase hex (b"" -> "0x")."""
    return "0x" + data.hex()
