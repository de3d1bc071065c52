"""MixNAS command line: ``python search.py COMMAND ...`` (``--help`` lists the commands)."""

import sys

from search.cli import main

if __name__ == "__main__":
    sys.exit(main())
