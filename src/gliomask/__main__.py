from gliomask.cli import main

raise SystemExit(main())
