rule infer:
    """Sample one learned model for one factor: R repeats averaged, per-pixel SD kept."""
    input:
        model=infer_model,
        testset=f"{OUT}/data/testset_{{testset}}.h5",
    output:
        f"{OUT}/predictions/{{testset}}/{{learned}}/{{factor}}.h5",
    params:
        sample=config["sample"],
    threads: JOB_THREADS
    resources:
        **gpu_resources(),
    log:
        f"{OUT}/logs/infer_{{testset}}_{{learned}}_{{factor}}.log",
    benchmark:
        f"{OUT}/benchmarks/infer_{{testset}}_{{learned}}_{{factor}}.tsv"
    conda:
        "../../envs/mssr.yaml"
    script:
        "../scripts/infer.py"


rule classical:
    """Non-learned methods (identity, deconvolution with the known kernel) on the same inputs, all factors."""
    input:
        testset=f"{OUT}/data/testset_{{testset}}.h5",
    output:
        expand(f"{OUT}/predictions/{{{{testset}}}}/{{{{classical}}}}/{{factor}}.h5", factor=FACTORS),
    params:
        degrade=config["degrade"],
        factors=FACTORS,
    log:
        f"{OUT}/logs/classical_{{testset}}_{{classical}}.log",
    conda:
        "../../envs/mssr.yaml"
    script:
        "../scripts/classical.py"
