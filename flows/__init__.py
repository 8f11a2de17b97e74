"""Prefect flows of s3-housekeeping and the command line that runs them."""
