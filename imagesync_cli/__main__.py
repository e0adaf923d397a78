from __future__ import annotations

import sys

from imagesync_cli.main import main

sys.exit(main())
