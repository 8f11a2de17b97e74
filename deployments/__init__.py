"""What runs the flows elsewhere: the logging configuration, local services and bootstrap."""
