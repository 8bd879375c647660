from bam_assets.console import main

raise SystemExit(main())
