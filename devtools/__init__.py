"""Development support shared by the tests, the benchmarks and `make serve`: local processes."""
