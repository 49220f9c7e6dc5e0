"""Alert mail, digests and escalation (SMTP), and optional forwarding to Alertmanager."""
