"""The node's deterministic core: chain, executor, fees, mempool, block sync, pacing, previews.

Nothing here uses asyncio, sockets or the wall clock (callers pass ``now``), so the
simulator can drive it exactly as the node does. It imports only ledger/, consensus/
and contracts_vm/, never node.rpc, node.ops or the service.
"""
