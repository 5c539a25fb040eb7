"""MoMo Guard: stream_app."""
