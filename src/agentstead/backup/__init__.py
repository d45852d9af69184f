"""Backups that restore: Litestream replication, restore, drills.

Litestream runs as its own process (agentstead-litestream.service, or
`agentstead backup replicate` in development and tests); the app never
supervises it. Modules, smallest first:

  config.py      the one Litestream configuration, rendered from Settings (pure)
  litestream.py  running the binary (environment without AWS_CA_BUNDLE,
                 credentials passed in its environment, never in a file) and
                 talking to its control socket
  status.py      replication state and the last drill, for /readyz, /metrics
                 and `agentstead backup status`
  drill.py       restore the replica into a temp dir and prove it matches
  restore.py     `agentstead backup restore` and the first-boot restore
  commands.py    the `agentstead backup ...` subcommands
"""


class BackupError(Exception):
    """A backup operation cannot go on. str() is a sentence for the admin."""
