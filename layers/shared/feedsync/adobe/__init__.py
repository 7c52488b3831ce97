"""Adobe auth and API clients: IMS, Analytics 2.0, Data Sources, BDIA, Target, CJA."""
