"""`python -m phasecheck`."""

from .cli import main

main()
