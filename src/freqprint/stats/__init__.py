"""The pure statistics, with no model in sight: the revised DFT and S′ (:mod:`.spectral`), the
verifier's null laws and their tail bounds (:mod:`.null`), the alignment of two filter stacks
(:mod:`.align`), and the rates a benchmark reports (:mod:`.metrics`: TPR at FPR, balanced
accuracy; :mod:`.aruc`: ARUC, ROC-AUC and bootstrap intervals for a verifier's scores), and the
p-values under a black-box verdict (:mod:`.floor`: an agreement permutation test, a conformal rank)."""
