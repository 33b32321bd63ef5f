"""Does a suspect derive from the owner's model?  The verdicts and what they read.

* :mod:`.key` — the owner's key: the spectra at S′, its commitment, lazy weight lookup;
* :mod:`.verifier` — the fingerprint channel (:func:`~freqprint.verification.verifier.verify`);
* :mod:`.backbone` — the lineage channel: the secret-seeded initialisation θ₀;
* :mod:`.provenance` — one verdict from every channel the owner has material for (``trace``);
* :mod:`.claim` — claim bundles: a key bound to the secret it claims to come from.

The functions ``verify``, ``lineage`` and ``trace`` are exported by :mod:`freqprint` itself; the
modules are named apart from them so that ``freqprint.verification.verifier.VerificationReport``
and ``freqprint.verify`` both mean one thing.
"""
