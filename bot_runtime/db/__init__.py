"""The trading_bots database: schema, migrations, repository."""
