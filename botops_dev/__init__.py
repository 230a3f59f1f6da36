"""Development tools: a local control plane, PostgreSQL provider and local node. Not shipped in images."""
