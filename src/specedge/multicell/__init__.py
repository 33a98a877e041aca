"""Several cells sharing a verifier (issue 13): topology and presets (:mod:`.topology`), verifier scheduling
policies (:mod:`.scheduling`), user association (:mod:`.association`), cell-to-MBS association
(:mod:`.mbs_association`), energy (:mod:`.energy`), the cells on the online engine (:mod:`.online`, compiled loop in
:mod:`.fast`), DiP-SD's setting and objective (:mod:`.dipsd`) and its batches on the online engine
(:mod:`.dipsd_online`), the CLI branch (:mod:`.cli`). See docs/multicell.md.
"""
