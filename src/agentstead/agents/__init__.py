"""What agents are made of: the tool registry and its tools."""
