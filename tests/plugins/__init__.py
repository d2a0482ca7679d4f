"""Domains that live only in the test tree, to prove a domain is a plug-in (see ``envs.registry``)."""
