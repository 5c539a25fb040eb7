"""MoMo Guard: momoguard."""
