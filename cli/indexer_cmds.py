"""`shopchain indexer run|status`: index any node's chain into SQLite or PostgreSQL.

How it works: ``run`` points node.indexer's runner at a remote node (``RpcSource``:
blocks and receipts as stored, pulled with chain_getRawBlocks and checked against each
header's roots) and a sink from ``--db`` (``sqlite:///path`` or
``postgresql://user@host:port/db``). It catches up in batches of ``--batch-blocks``
(each one SQL transaction with the indexed height, so a kill loses at most the batch
in flight and a restart continues after the last one) and then follows the head by
polling, until SIGTERM/Ctrl-C (the batch in flight finishes first) or ``--until``.
``status`` prints the indexed height of a database.
"""

from __future__ import annotations

import json
import signal
import threading

import click

from cli.output import EXIT_NODE, CliError, node_unreachable_hint
from node.client import Client, RpcFailure
from node.indexer.runner import REMOTE_POLL_S, Indexer, RpcSource
from node.indexer.sink import MAX_BLOCKS_PER_TRANSACTION, IndexerError, open_sink


@click.group()
def indexer() -> None:
    """Index blocks, transactions and events into SQL for analytics (docs/analytics.md)."""


@indexer.command("run")
@click.option("--from", "node_url", required=True, metavar="NODE_URL", help="the node to index, e.g. http://127.0.0.1:8545")
@click.option("--db", "db_url", required=True, metavar="URL",
              help="sqlite:///path/to/index.sqlite or postgresql://user@host:port/database")
@click.option("--batch-blocks", type=click.IntRange(1, MAX_BLOCKS_PER_TRANSACTION), default=MAX_BLOCKS_PER_TRANSACTION,
              show_default=True, help="blocks per SQL transaction")
@click.option("--until", "until", type=click.IntRange(1), default=None,
              help="stop once this height is indexed (default: follow the head until stopped)")
@click.option("--poll", type=click.FloatRange(0.05, 60), default=REMOTE_POLL_S, show_default=True,
              help="seconds between head checks once caught up")
@click.option("--quiet", is_flag=True, help="no line per batch")
def run(node_url: str, db_url: str, batch_blocks: int, until: int | None, poll: float, quiet: bool) -> None:
    """Index NODE_URL's chain into --db, then follow its head."""
    try:
        sink = open_sink(db_url)
    except IndexerError as exc:
        raise CliError(str(exc)) from None
    try:
        source = RpcSource(Client(node_url))
    except RpcFailure as exc:
        raise CliError(f"cannot read the chain of {node_url}: {exc}", EXIT_NODE, node_unreachable_hint(node_url)) from None

    def progress(height: int, head: int) -> None:
        if not quiet:
            click.echo(json.dumps({"indexed_height": height, "head": head, "lag": head - height}), nl=True)

    runner = Indexer(sink, source, batch_blocks, on_batch=progress)
    try:
        start = runner.start()
    except IndexerError as exc:
        raise CliError(str(exc)) from None
    click.echo(f"indexing chain {source.chain_id} from {node_url} into {db_url.split('@')[-1]} "
               f"after height {start}", err=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        height = runner.follow(stop, idle_s=poll, until=until)
    finally:
        sink.close()
    click.echo(f"stopped at indexed height {height}", err=True)


@indexer.command("status")
@click.option("--db", "db_url", required=True, metavar="URL", help="the index database URL")
def status(db_url: str) -> None:
    """The chain and height an index database holds."""
    try:
        sink = open_sink(db_url)
    except IndexerError as exc:
        raise CliError(str(exc)) from None
    try:
        rows = sink.query("SELECT chain_id, height, last_hash FROM indexer_state WHERE id = 1")
    except IndexerError as exc:
        raise CliError(str(exc)) from None
    except Exception as exc:  # the driver's own error: a database without the schema yet
        raise CliError(f"{db_url.split('@')[-1]} holds no index yet ({exc})") from None
    finally:
        sink.close()
    if not rows:
        raise CliError(f"{db_url.split('@')[-1]} holds no index yet")
    chain_id, height, last_hash = rows[0]
    click.echo(json.dumps({"chain_id": chain_id, "indexed_height": height, "last_hash": last_hash}))


def all_groups() -> list[click.Group]:
    return [indexer]
