"""KIS Trading Gateway: one owner of the KIS Open API session, plus a wire-faithful KIS simulator."""

__version__ = "0.1.0"
