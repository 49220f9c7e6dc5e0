"""Small pieces the agent and the collector both need (they never import each other)."""
