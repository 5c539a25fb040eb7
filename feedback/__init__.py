"""The closed loop: the scored-transaction log (written by `momoguard log-sink`), analysts' labels, and the
joins training and `momoguard models compare` read them through (docs/FEEDBACK.md)."""
