"""``python -m freqprint.cli``."""

from freqprint.cli import main

main()
