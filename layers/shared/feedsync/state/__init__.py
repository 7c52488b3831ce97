"""What both steps store and how: typed records, the state bucket's key layout, and the ports
(ledger, run state, upload log) the AWS adapters and the test fakes implement."""
