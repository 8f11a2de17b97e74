"""Side-by-side benchmarks of s3-housekeeping and its peers against real local S3 servers."""
