"""Email adapter: SMTP and IMAP intake, parsing, loop rules, staff trust, composing, delivery."""
