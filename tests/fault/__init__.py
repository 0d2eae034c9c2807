"""Fault injection against real node processes: TCP proxies between validators and a kill/restart driver.

``proxy.FaultNet`` puts a fault-injecting proxy on every ordered pair of validators;
``cluster.start_proxied`` starts a devnet wired through it; ``cluster.Crasher`` kills
and restarts nodes; ``checks`` reads stopped nodes' stores and checks agreement,
exactly-once commits and that no validator signed two digests for one slot.
"""
