"""What an operator touches: config, node home and keys, keystore, logs, metrics, snapshots, offline verify.

config.py gathers every wing's defaults from their module constants (one source per
limit), so it may import node.core and node.rpc constants; nothing in node.core
imports this wing.
"""
