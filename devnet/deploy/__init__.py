"""Files and helpers for running a shopchain network across machines (see README.md here)."""
