"""AWS adapters: the pipeline's ports (object store, ledger, run state, rate limiter, secrets)
implemented on boto3. Nothing outside this package imports boto3 types or DynamoDB details."""
