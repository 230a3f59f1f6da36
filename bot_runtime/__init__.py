"""tradingbot-operator bot runtime and shared domain (spec models, database, strategy registry)."""
