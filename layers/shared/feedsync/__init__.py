"""feedsync: close the loop between Adobe Analytics data feeds and a CRM."""

__version__ = "0.1.0"
