"""Pure builders: desired Kubernetes objects from a TradingBot (no I/O, no clock, no randomness)."""
