"""The staff console: server-rendered pages in the web process at /console (contract section 9)."""
