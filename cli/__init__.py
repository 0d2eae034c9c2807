"""cli: the `shopchain` command (click)."""
