"""The parse step (ParseFeedFunction): a data feed delivery in S3 -> per-file results (sorted
visitor streams) and one verified delivery record; backfill drives it over history."""
