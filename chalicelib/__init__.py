"""The vamp-serverless core: everything the Lambda functions run."""
