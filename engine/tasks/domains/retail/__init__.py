"""Retail task synthesis: ``recipes.SPEC`` (write recipes), ``rules`` (ways to name an order, item or
payment), ``refusals``, ``policy`` (the policy as checks on a gold write) and ``common``."""
