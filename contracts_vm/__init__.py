"""contracts_vm package."""
