"""Several cells sharing a verifier (issue 13): topology and presets (:mod:`.topology`), verifier scheduling
policies (:mod:`.scheduling`), user association (:mod:`.association`), energy (:mod:`.energy`), the cells on the online
engine (:mod:`.online`, compiled loop in :mod:`.fast`), DiP-SD's setting and objective (:mod:`.dipsd`), the CLI branch
(:mod:`.cli`). See docs/multicell.md.
"""
