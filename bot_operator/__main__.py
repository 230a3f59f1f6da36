from bot_operator.cli import main

raise SystemExit(main())
