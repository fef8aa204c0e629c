from komeet_sync.cli import main

raise SystemExit(main())
