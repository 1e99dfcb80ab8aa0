"""``python -m gradfit``."""

import sys

from gradfit.cli import main

sys.exit(main())
