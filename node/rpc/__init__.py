"""The node's client surface: JSON-RPC dispatcher, HTTP/websocket server, methods, OpenRPC, explorer.

Handlers read the node through ``node.rpc.nodeview.NodeView``, one narrow read
interface the service implements, so this wing never imports the service; it may import node.core
for read helpers and node.ops.metrics for its counters.
"""
