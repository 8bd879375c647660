from bam_assets.cli import main

raise SystemExit(main())
