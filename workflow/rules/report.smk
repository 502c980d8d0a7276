rule sweep:
    """Metrics vs number of sampling steps for several repeat counts (the paper's Fig. 6)."""
    input:
        model=f"{OUT}/models/mssr/model.safetensors",
        testset=f"{OUT}/data/testset_blur.h5",
    output:
        report(f"{OUT}/tables/sweep.csv", caption="../report/sweep.rst", category="Tables"),
    params:
        sample=config["sample"],
        sweep=config["sweep"],
        metrics=config["metrics"],
        factors=FACTORS,
    threads: JOB_THREADS
    resources:
        **gpu_resources(),
    log:
        f"{OUT}/logs/sweep.log",
    benchmark:
        f"{OUT}/benchmarks/sweep.tsv"
    conda:
        "../../envs/mssr.yaml"
    script:
        "../scripts/sweep.py"


rule provenance:
    """Config, code version, package versions, input checksums and MLflow run ids behind every number."""
    input:
        manifest=rules.fetch.output.manifest,
        data=[rules.split.output.train, rules.split.output.val, rules.split.output.test],
        models=[f"{OUT}/models/mssr/config.json"] + [f"{OUT}/models/baseline_{f}/config.json" for f in FACTORS],
        metrics=rules.metrics.output[0],
    output:
        report(f"{OUT}/provenance.json", caption="../report/provenance.rst", category="Provenance"),
    params:
        cfg=config,
    log:
        f"{OUT}/logs/provenance.log",
    conda:
        "../../envs/mssr.yaml"
    script:
        "../scripts/provenance.py"


rule plot:
    """The paper's figures with confidence bands, plus uncertainty and loss curves."""
    input:
        metrics=rules.metrics.output[0],
        summary=rules.tables.output.summary,
        sweep=rules.sweep.output[0],
        testset=f"{OUT}/data/testset_blur.h5",
        predictions=predictions("blur"),
        histories=[f"{OUT}/models/mssr/history.csv"] + [f"{OUT}/models/baseline_{f}/history.csv" for f in FACTORS],
        provenance=rules.provenance.output[0],
    output:
        example=report(f"{OUT}/figures/fig3_example.png", caption="../report/fig3.rst", category="Figures"),
        global_metrics=report(f"{OUT}/figures/fig4_global.png", caption="../report/fig4.rst", category="Figures"),
        local_metrics=report(f"{OUT}/figures/fig5_local.png", caption="../report/fig5.rst", category="Figures"),
        sweep=report(f"{OUT}/figures/fig6_sweep.png", caption="../report/fig6.rst", category="Figures"),
        uncertainty=report(f"{OUT}/figures/uncertainty.png", caption="../report/uncertainty.rst", category="Figures"),
        loss=report(f"{OUT}/figures/loss_curves.png", caption="../report/loss.rst", category="Figures"),
        index=f"{OUT}/figures/figures.json",
    params:
        factors=FACTORS,
    log:
        f"{OUT}/logs/plot.log",
    conda:
        "../../envs/mssr.yaml"
    script:
        "../scripts/plot.py"
