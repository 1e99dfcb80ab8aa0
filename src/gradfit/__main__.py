"""``python -m gradfit``.

Only the light :mod:`gradfit.cli` is imported here; :func:`gradfit.cli.entry` imports the rest
(PyTorch included) inside its guard, so that Ctrl-C or SIGTERM even during those imports gives
one line and exit code 130 or 143, never a traceback.
"""

import sys

from gradfit.cli import entry

sys.exit(entry())
