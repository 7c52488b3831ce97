from feedsync.cli import main

raise SystemExit(main())
