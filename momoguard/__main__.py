"""`python -m momoguard`: the same as the `momoguard` command."""

from momoguard.cli import main

main()
