"""Simulations of participants, and the tools they run on, with no LiveKit server.

- :mod:`~lkpersist.sim.reconnect`: ``simulate reconnect``, the real controller and a real ``AgentSession``
  through connect, conversation, disconnect and return, on a virtual clock.
- :mod:`~lkpersist.sim.load`: ``simulate load``, many participants against one store (store API only,
  no livekit).
- :mod:`~lkpersist.sim.roomsim`: participant events fed into a real, unconnected ``rtc.Room``.
- :mod:`~lkpersist.sim.scripted_llm`: a deterministic offline ``llm.LLM`` for the simulation and tests.

Nothing is imported here, so ``simulate load`` never loads livekit.
"""
