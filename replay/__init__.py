"""MoMo Guard: replay."""
