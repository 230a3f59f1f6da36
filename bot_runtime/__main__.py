from bot_runtime.cli import main

raise SystemExit(main())
