"""The KIS adapter: the only code that knows KIS paths, TR ids and field names.

``fields``, ``trids`` and ``codes`` are protocol facts (reference: shared/reference/kis-protocol.md); the
simulator in ``kis.sim`` serves the same facts from the server side.
"""
