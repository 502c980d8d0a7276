rule metrics:
    """The nine metrics per (test set, method, factor, sample) in one long table."""
    input:
        testsets=expand(f"{OUT}/data/testset_{{testset}}.h5", testset=TESTSETS),
        predictions=[p for t in TESTSETS for p in predictions(t)],
    output:
        report(
            f"{OUT}/tables/metrics.csv",
            caption="../report/metrics.rst",
            category="Tables",
        ),
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
    """Per-factor means with 95% bootstrap confidence intervals, and Table 1 recomputed."""
    input:
        metrics=rules.metrics.output[0],
    output:
        summary=report(f"{OUT}/tables/summary.csv", caption="../report/summary.rst", category="Tables"),
        markdown=f"{OUT}/tables/summary.md",
        table1_md=f"{OUT}/tables/table1.md",
        table1=report(f"{OUT}/tables/table1.csv", caption="../report/table1.rst", category="Tables"),
    params:
        bootstrap=config["metrics"]["bootstrap"],
        seed=config["seed"],
    log:
        f"{OUT}/logs/tables.log",
    conda:
        "../../envs/mssr.yaml"
    script:
        "../scripts/tables.py"
