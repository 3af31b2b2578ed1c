"""``python -m kvshim`` runs the command line."""

from kvshim.cli import main

main()
