"""The explorer's scanEvents pages through the whole indexed history, then a bounded block scan.

Runs the function from node/rpc/explorer_static/app.js in Node.js against a stand-in
for chain_getEvents: many index pages (more than the block-scan cap) must all be read.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

pytestmark = pytest.mark.integration  # runs node

APP = os.path.join(os.path.dirname(__file__), "..", "..", "node", "rpc", "explorer_static", "app.js")


def _function(source: str, name: str) -> str:
    start = source.index(f"async function {name}(")
    end = source.index("\n}\n", start) + 3
    return source[start:end]


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed (the explorer runs in browsers)")
def test_scan_events_reads_every_index_page_then_scans_the_tail():
    source = open(APP).read()
    consts = "\n".join(re.findall(r"^const MAX_(?:EVENT|INDEX)_PAGES = \d+;", source, re.M))
    script = consts + "\n" + _function(source, "scanEvents") + """
const INDEXED = 60 * 1000, HEAD = INDEXED + 3 * 2000;
let calls = 0;
async function rpc(method, contract, filters, from, to) {
  calls += 1;
  if (from <= INDEXED) {   // index pages of 1,000 blocks each (a busy order), one event per page
    const last = Math.min(from + 999, INDEXED);
    return { events: [{ height: from }], from_height: from, to_height: last, next_from: last + 1,
             source: "index", indexed_height: INDEXED };
  }
  const last = Math.min(from + 1999, HEAD);
  return { events: [], from_height: from, to_height: last, next_from: last < HEAD ? last + 1 : null, source: "scan" };
}
scanEvents("", null, 1).then((scan) => console.log(JSON.stringify({ ...scan, events: scan.events.length, calls })));
"""
    done = subprocess.run(["node", "-e", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    scan = json.loads(done.stdout)
    assert scan == {"events": 60, "from": 1, "to": 66_000, "complete": True, "indexed": 60_000, "calls": 63}
