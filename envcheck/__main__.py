"""`python -m envcheck` runs the same command line as the `envcheck` script."""

from envcheck.cli import main

main()
