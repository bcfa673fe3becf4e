"""The vamp-serverless core: everything the Lambda functions run."""

VERSION = "0.1.0"
