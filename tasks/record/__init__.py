"""What a run leaves behind: its report, artifacts, events and notifications."""
