"""The KIS simulator: REST and WebSocket servers that speak the real KIS wire protocol.

``Simulator`` (engine.py) holds all state; ``rest.py`` and ``ws.py`` are its two network faces;
``server.py`` starts both on loopback, in-process or from ``kis sim``.
"""
