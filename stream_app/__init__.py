"""The streaming scorer: a Faust app from transaction bytes to verdict bytes, its metrics and web views."""
