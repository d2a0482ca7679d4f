"""Task synthesis along WRIT's two axes: W (write decisions) and E (evidence reads per write)."""

from engine.tasks.model import Action, Behavior, Blueprint, EvidenceRead, Intent, Task, UserFacts
from engine.tasks.recipe import DomainSpec, Recipe, Reject, SampleContext, get_spec

__all__ = [
    "Action",
    "Behavior",
    "Blueprint",
    "DomainSpec",
    "EvidenceRead",
    "Intent",
    "Recipe",
    "Reject",
    "SampleContext",
    "Task",
    "UserFacts",
    "get_spec",
]
