"""``python -m ackdb``: the same as the ``ackdb`` command."""

import sys

from .cli import main

sys.exit(main())
