"""freqprint's benchmarks, its demo and its test corpus: code that *measures* the library.

Nothing in :mod:`freqprint` imports this package; ``freqprint bench …``, ``freqprint demo`` and
``freqprint metav bench`` import it when they run.

* :mod:`.core` — micro-benchmarks, calibration of the null, attacks, rewrites, claims, hostile files;
* :mod:`.tracing` — the model-tracing benchmark (the paper's Table 2) over any ``Method``;
* :mod:`.panel` — independently trained models: the hardest negatives for ``trace``;
* :mod:`.transformers` — the rebuttal's BERT / ViT tables at reduced scale;
* :mod:`.scale` — tracing at scale (screen, scans, Ray);
* :mod:`.metav` — MetaV beside IPGuard, "same mistakes" and the frequency fingerprint;
* :mod:`.demo` — the end-to-end story ``make demo`` runs;
* :mod:`.corpus` — a folder of mixed checkpoints with known labels (the scan's test and benchmark);
* :mod:`.report` — the one timing helper, and the loader of ``profiles/*.json``.
"""
