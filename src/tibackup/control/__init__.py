"""The control plane: pure decisions of schedules (when to back up, what to name it, what to delete)."""
