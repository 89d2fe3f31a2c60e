"""Keeping a store healthy: `gc` (remove what nothing references) and `fsck` (check, and repair, all of it)."""
