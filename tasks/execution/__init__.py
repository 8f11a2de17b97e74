"""Where the parts of a run are planned and applied: this process, or a Dask cluster."""
