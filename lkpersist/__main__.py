"""``python -m lkpersist`` runs the CLI."""

from lkpersist.cli import main

main()
