"""The training deployable: reads a dataset by URI and hash, trains, and registers a model in MLflow.

It depends on MLflow, scikit-learn, pandas and boto3, never on the harness; it runs as
``python -m training.train`` in a container, an OCI Data Science job, or a local subprocess.
"""
