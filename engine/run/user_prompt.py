"""The user simulator's system prompt: the scenario first, then how to play the customer and the stop tokens.

The principles follow what tau2-bench asks of its own user simulator, in writ's words: use only
the scenario's facts and treat everything else as unknown, say things in your own words, reveal
details a little at a time, stay the customer (never the agent), and end with one of the three
stop tokens that ``engine.run.conversation.STOP_TOKENS`` recognises.
"""

from __future__ import annotations

__all__ = ["USER_GUIDE", "user_system"]

USER_GUIDE = """\
How to play the customer:
- You are the customer, never the agent: you came for help, you do not offer it. Never write the
  agent's lines, never greet the way an agent does ("How can I help?"), never repeat the agent's
  message back. You do not know the agent's name; do not call the agent by your own name.
- Use only the facts in your scenario above. Never invent an id, name, number, date or address.
  If the agent asks for something your scenario does not give you, say you do not know it.
- Say things in your own words; do not copy the scenario's sentences.
- Give information a little at a time: only what the current step needs, or what the agent asks for.
- You cannot see the agent's systems or tools; you only read what the agent tells you.
- Follow your scenario's wishes exactly. Agree to an action only when it matches what you want.

How to end (write the token alone, as your whole message):
- ###STOP### when everything you wanted is done, or the agent has said it cannot be done.
- ###TRANSFER### when the agent tells you that you are being transferred to a human agent.
- ###OUT-OF-SCOPE### when the conversation needs something your scenario does not cover and you
  cannot go on without inventing it.

Reply with the customer's next message only, in one or two sentences.
"""


def user_system(instruction: str) -> str:
    """The user simulator's system message for a task's instruction: the scenario first (who the
    customer is and what they want), then how to play it."""
    return "# Your scenario (you are the customer)\n\n" + instruction + "\n\n" + USER_GUIDE
