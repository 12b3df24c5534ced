"""``python -m live_agent.cli``: the ``deepjam`` command."""

import sys

from live_agent.cli import main

if __name__ == "__main__":
    sys.exit(main())
