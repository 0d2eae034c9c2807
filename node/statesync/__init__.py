"""State sync: a newcomer fetches a recent certified state from its peers, then block-syncs the rest.

wire.py holds the messages, their limits and the proof of an offer from genesis;
serve.py answers offers and trie-node requests within a per-peer budget; fetch.py is
the newcomer's deterministic, crash-safe fetcher; run.py drives it over p2p before
the node starts (node.service.run_node).
"""
