"""Slack adapter: HTTP events and Socket Mode intake, listeners, Block Kit, delivery."""
