"""``python -m handwritten.chaos`` (see ``handwritten.chaos.cli``)."""

from __future__ import annotations

import sys

from handwritten.chaos.cli import main

if __name__ == "__main__":
    sys.exit(main())
