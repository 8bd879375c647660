from bam_assets.cli.console import main

raise SystemExit(main())
