"""Prefect tasks of s3-housekeeping and the plain functions they wrap."""
