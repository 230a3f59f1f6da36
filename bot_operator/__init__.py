"""tradingbot-operator controller: turns TradingBot resources and trading_bots rows into bot pods."""
