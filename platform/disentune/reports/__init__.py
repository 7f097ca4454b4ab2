"""Outputs of a run: Parquet tables (local or s3://), Pareto figures and the HTML report."""
