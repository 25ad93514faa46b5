"""``python -m elman.cli`` (what ``torchrun -m elman.cli`` runs)."""

import sys

from elman.cli import main

sys.exit(main())
