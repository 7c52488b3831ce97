"""Reading Adobe Analytics data feed deliveries: names, manifests, lookup archives and hits."""
