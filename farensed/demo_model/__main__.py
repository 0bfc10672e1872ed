"""`python -m farensed.demo_model`: build the tiny demo model (see build.py)."""

import sys

from .build import main

sys.exit(main())
