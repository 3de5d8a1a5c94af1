"""Email channel (placeholder until the email worker lands)."""
