"""Airline task synthesis: ``recipes.SPEC`` (write recipes), ``trips`` (search-based bookings and
changes), ``refusals``, ``policy`` (the policy as checks on a gold write), ``search`` and ``common``."""
