"""The command line at the top of the house: `momoguard` composes every room's commands, and the demo."""
