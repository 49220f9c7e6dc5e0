"""The agent as an OS service: the systemd unit (Linux) and the Windows service host."""
