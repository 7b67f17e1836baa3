"""``python -m tfloss <command>``; see ``tfloss.cli``."""

import sys

from tfloss.cli import main

sys.exit(main())
