"""``python -m harness.cli``: the same as the ``lastmile`` command."""

from harness.cli import main

main()
