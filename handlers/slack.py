"""Slack channel (placeholder until the Slack adapter lands)."""
