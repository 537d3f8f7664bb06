"""``python -m mxbridge``: the same as the ``mxbridge`` command."""

from mxbridge._cli import main

main()
