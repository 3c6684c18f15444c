from kling_cli.cli import main

raise SystemExit(main())
