"""eLicense Ledger real-Fabric network tooling (network.sh)."""
