"""The gateway on port 8890: session owner, quotes, (later) orders; routes stay thin over services."""
