"""`python -m farensed.demo.model`: build the tiny demo model (see build.py)."""

import sys

from farensed.demo.model.build import main

sys.exit(main())
