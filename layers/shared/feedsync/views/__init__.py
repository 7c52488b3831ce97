"""Views of the stored state, rebuilt whenever it changes: a delivery's report (JSON, HTML) and
the operator's status. Nothing here decides anything; it reads and renders."""
