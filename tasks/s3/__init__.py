"""The S3 engine: listing, selection, the plan manifest and deletes; plain Python and boto3, no
Prefect."""
