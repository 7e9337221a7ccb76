"""``python -m govern.cli`` = ``govern``."""

from govern.cli.main import main

main()
