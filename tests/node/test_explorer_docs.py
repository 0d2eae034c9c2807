"""The docs stay true: generated references match the code, links resolve, the quick start runs.

docs/rpc.md, docs/config.md and docs/metrics.md are regenerated from the route table,
``node.ops.config.DEFAULTS`` and the metrics a node registers, and must equal the committed
files. Every relative link and image in docs/ and the deploy guide must point at a
file that exists. The quick start's example runs against a real devnet.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from node.ops.config import DEFAULTS
from node.ops.metric_defs import ALL_METRICS
from node.rpc.openrpc_docs import config_markdown, metrics_markdown, route_table, rpc_markdown
from tests.nethelpers import Devnet

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOCS = os.path.join(ROOT, "docs")
GUIDES = ["quickstart.md", "operator-guide.md", "developer-guide.md", "architecture.md", "security.md", "explorer.md"]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def read(*parts: str) -> str:
    with open(os.path.join(ROOT, *parts), encoding="utf-8") as fh:
        return fh.read()


@pytest.mark.parametrize("name, generate", [("rpc.md", rpc_markdown), ("config.md", config_markdown),
                                            ("metrics.md", metrics_markdown)])
def test_generated_references_match_the_code(name, generate):
    assert read("docs", name) == generate(), (
        f"docs/{name} is out of date with the code; regenerate it: "
        f"python -m node.rpc.openrpc_docs {name[:-3]} > docs/{name}")


def test_references_list_every_method_key_and_metric():
    rpc = read("docs", "rpc.md")
    for method in route_table():
        assert f"### `{method.name}`" in rpc, method.name
    config = read("docs", "config.md")
    for key in DEFAULTS:
        section = config.split(f"## [{key.section}]", 1)[1].split("\n## ", 1)[0]
        assert f"| `{key.name}` |" in section, f"[{key.section}] {key.name}"
    metrics = read("docs", "metrics.md")
    for metric in ALL_METRICS:
        assert f"`{metric.name}`" in metrics, metric.name


def test_every_guide_exists_and_every_relative_link_resolves():
    pages = [os.path.join("docs", g) for g in GUIDES] + ["docs/README.md", "devnet/deploy/README.md"]
    for page in pages:
        text = read(page)
        for target in LINK.findall(text):
            if re.match(r"^[a-z]+:", target) or target.startswith("#"):
                continue
            path = os.path.normpath(os.path.join(ROOT, os.path.dirname(page), target.split("#", 1)[0]))
            assert os.path.exists(path), f"{page} links to {target}, which does not exist"
    shots = " ".join(read("docs", g) for g in GUIDES)
    for shot in os.listdir(os.path.join(DOCS, "screenshots")):
        assert f"screenshots/{shot}" in shots, f"docs/screenshots/{shot} is linked from no guide"
    guide = read("docs", "operator-guide.md")
    for target in ("config.md", "metrics.md", "../devnet/deploy/README.md"):
        assert f"]({target})" in guide, f"the operator guide should link {target}"
    assert "](rpc.md)" in read("docs", "developer-guide.md")


@pytest.mark.integration
def test_the_quick_start_example_places_and_completes_an_order(tmp_path):
    net = Devnet.start(str(tmp_path / "devnet"))
    try:
        done = subprocess.run([sys.executable, os.path.join(DOCS, "examples", "first_order.py"), "--rpc", net.urls[0],
                               "--keys", os.path.join(net.root, "keys")], cwd=ROOT, capture_output=True, text=True,
                              timeout=180, env={**os.environ, "PYTHONPATH": ROOT})
    finally:
        net.stop()
    assert done.returncode == 0, done.stderr[-2000:]
    assert re.search(r"order \d+ is COMPLETED", done.stdout), done.stdout
    assert "/#/order/" in done.stdout
