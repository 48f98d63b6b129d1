"""`python -m envcheck` runs the same command line as the `envcheck` script."""

from envcheck.launch import main

main()
