"""The daily run (EnrichUploadFunction): complete deliveries -> pending visitors -> CRM ->
Adobe destinations, each visitor's state kept in the ledger, Adobe's verdicts read back."""
