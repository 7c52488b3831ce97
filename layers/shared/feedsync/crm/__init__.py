"""CRM sources: Marketo lookups, or a file export in S3."""
