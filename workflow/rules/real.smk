rule real_study:
    """Measured 800 MHz spectra broadened physically: every classical method (tuned on the other protein) and MSSR."""
    input:
        model=REAL_MODEL_FILES,
    output:
        table=report(f"{OUT}/tables/real.csv", caption="../report/real.rst", category="Tables"),
        figure=report(f"{OUT}/figures/real_protein_L.png", caption="../report/real.rst", category="Figures"),
    params:
        real=config.get("real", {}),
        model_dir=lambda wildcards, input: str(Path(input.model[0]).parent),
    threads: JOB_THREADS
    resources:
        **gpu_resources(),
    log:
        f"{OUT}/logs/real_study.log",
    benchmark:
        f"{OUT}/benchmarks/real_study.tsv"
    conda:
        "../../envs/mssr.yaml"
    script:
        "../scripts/real_study.py"
