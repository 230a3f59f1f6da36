"""Brokers: Backtrader's paper broker configured from the spec, and the live ccxt broker."""
