"""``python -m handwritten.cli`` is ``mc``."""

import sys

from handwritten.cli.main import main

sys.exit(main())
