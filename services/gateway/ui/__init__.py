"""The web UI: static pages under ``/ui/``, a server-side browser session, security headers."""
