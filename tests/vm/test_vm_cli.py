"""`shopchain contract compile / disasm / deploy-tx` through click's test runner."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from cli.main import main
from contracts_vm import compile_source
from contracts_vm.deploy import decode_deploy

TOKEN = Path(__file__).resolve().parents[2] / "contracts_vm" / "examples" / "token.sc.py"


def test_compile_human_and_json(tmp_path):
    runner = CliRunner()
    human = runner.invoke(main, ["contract", "compile", str(TOKEN)])
    assert human.exit_code == 0, human.output
    assert "@public transfer(to: bytes, amount: int) -> bool" in human.output
    out = runner.invoke(main, ["contract", "compile", str(TOKEN), "--json", "-o", str(tmp_path / "t.scb")])
    assert out.exit_code == 0
    data = json.loads(out.output)
    compiled = compile_source(TOKEN.read_text(), str(TOKEN))
    assert data["code"] == "0x" + compiled.code.hex() and data["code_hash"] == "0x" + compiled.code_hash.hex()
    assert data["abi"]["methods"][2]["name"] == "transfer"
    assert (tmp_path / "t.scb").read_bytes() == compiled.code


def test_disasm_source_and_bytecode(tmp_path):
    runner = CliRunner()
    (tmp_path / "t.scb").write_bytes(compile_source(TOKEN.read_text()).code)
    for target in (TOKEN, tmp_path / "t.scb"):
        out = runner.invoke(main, ["contract", "disasm", str(target)])
        assert out.exit_code == 0
        assert "func transfer" in out.output and "SGET_DEFAULT" in out.output


def test_compile_error_exit_code_and_location(tmp_path):
    bad = tmp_path / "bad.sc.py"
    bad.write_text("@public\ndef f() -> int:\n    return 1 / 2\n")
    out = CliRunner().invoke(main, ["contract", "compile", str(bad)])
    assert out.exit_code == 1
    assert f"{bad}:3:12: / is not supported" in out.output


def test_deploy_tx_payload():
    out = CliRunner().invoke(main, ["contract", "deploy-tx", str(TOKEN), "--name", "token", "--capability", "escrow",
                                    "--init-args", "[]", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    tx = decode_deploy(bytes.fromhex(data["payload"][2:]))
    assert tx.name == "token" and tx.action == "deploy" and tx.capabilities == ["escrow"] and tx.init_args == []
    assert data["code_hash"] == "0x" + tx.code_hash.hex()
