-- Network: 'demo sma' and 'demo macd' use the synthetic feed and run offline; 'advanced btc' needs
-- Binance's public market data (api.binance.com).
-- Example trading_bots rows: the operator syncs each valid, enabled row into a TradingBot in its
-- --bots-namespace (psql "$DATABASE_URL" -f examples/trading_bots.sql). Config columns are JSON with
-- the same fields as a TradingBot spec, in snake_case; `bot-operator db upgrade` creates the table.
INSERT INTO trading_bots (user_id, name, description, strategy_type, strategy_params, exchange, symbol,
                          timeframe, mode, market_config, broker_config, risk_config, runtime_config)
VALUES
  (1, 'demo sma', 'SMA crossover on the synthetic feed', 'CustomStrategy',
   '{"entry_logic": {"name": "sma_crossover", "params": {"fast_period": 5, "slow_period": 20}},
     "exit_logic": [{"name": "stop_loss", "params": {"stop_loss_pct": 0.02}}]}',
   'binance', 'BTC/USDT', '1m', 'paper', '{"feed": "synthetic", "seed": 7, "warmup_bars": 50}',
   '{"cash": 10000, "commission": 0.001}', '{"max_daily_loss": 200}', '{"heartbeat_interval_seconds": 10}'),
  (1, 'demo macd', 'MACD cross with a trailing stop', 'CustomStrategy',
   '{"entry_logic": "macd_cross", "exit_logic": ["trailing_stop", "time_exit"]}',
   'binance', 'ETH/USDT', '1m', 'paper', '{"feed": "synthetic", "seed": 11}',
   '{"cash": 5000}', '{"max_open_orders": 1}', '{}'),
  (2, 'advanced btc', 'Weighted signals, risk-fraction sizing', 'AdvancedStrategyFramework',
   '{"threshold": 0.5, "risk_fraction": 0.01, "stop_loss_pct": 0.02}',
   'binance', 'BTC/USDT', '5m', 'paper', '{"warmup_bars": 200}', '{"cash": 20000}',
   '{"max_position_size": 0.5, "max_daily_loss": 400}', '{}');
