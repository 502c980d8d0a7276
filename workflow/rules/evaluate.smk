rule metrics:
    """The nine metrics, line widths in Hz and resolved pairs per (test set, method, factor, spectrum)
    in one long table, and one row per matched peak pair (positions in ppm, widths in Hz)."""
    input:
        testsets=expand(f"{OUT}/data/testset_{{testset}}.h5", testset=TESTSETS),
        predictions=[p for t in TESTSETS for p in predictions(t)],
    output:
        metrics=report(
            f"{OUT}/tables/metrics.csv",
            caption="../report/metrics.rst",
            category="Tables",
        ),
        peaks=f"{OUT}/tables/peaks.csv.gz",
    params:
        metrics=config["metrics"],
    log:
        f"{OUT}/logs/metrics.log",
    benchmark:
        f"{OUT}/benchmarks/metrics.tsv"
    conda:
        "../../envs/mssr.yaml"
    script:
        "../scripts/metrics.py"


rule tables:
    """Per-factor means with 95% CIs by protein (cluster bootstrap), paired differences of each learned
    method against each reference, Table 1 recomputed; the evaluation logged as one MLflow run."""
    input:
        metrics=rules.metrics.output.metrics,
        store=rules.tracking_store.output[0],
    output:
        summary=report(f"{OUT}/tables/summary.csv", caption="../report/summary.rst", category="Tables"),
        markdown=f"{OUT}/tables/summary.md",
        table1_md=f"{OUT}/tables/table1.md",
        table1=report(f"{OUT}/tables/table1.csv", caption="../report/table1.rst", category="Tables"),
        paired=report(f"{OUT}/tables/paired.csv", caption="../report/paired.rst", category="Tables"),
        paired_md=f"{OUT}/tables/paired.md",
    params:
        bootstrap=config["metrics"]["bootstrap"],
        seed=config["seed"],
        learned=LEARNED,
        tracking=config["tracking"],
        metrics=config["metrics"],
        budgets={"mssr": config["train"]["epochs"], "baseline": config["baseline"]["epochs"]},
    log:
        f"{OUT}/logs/tables.log",
    conda:
        "../../envs/mssr.yaml"
    script:
        "../scripts/tables.py"
