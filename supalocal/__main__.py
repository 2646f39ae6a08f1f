"""``python -m supalocal``: see :mod:`supalocal.cli`."""

import sys

from supalocal.cli import main

sys.exit(main())
