"""`python -m drivesim.cli ...`."""

import sys

from drivesim.cli.main import main

sys.exit(main())
