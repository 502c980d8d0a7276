rule infer:
    """Sample one learned model for one factor: R repeats averaged, per-pixel SD kept."""
    input:
        model=infer_model,
        testset=f"{OUT}/data/testset_{{testset}}.h5",
    output:
        f"{OUT}/predictions/{{testset}}/{{learned}}/{{factor}}.h5",
    params:
        sample=config["sample"],
    resources:
        **gpu_resources(),
    log:
        f"{OUT}/logs/infer_{{testset}}_{{learned}}_{{factor}}.log",
    benchmark:
        f"{OUT}/benchmarks/infer_{{testset}}_{{learned}}_{{factor}}.tsv"
    script:
        "../scripts/infer.py"


rule classical:
    """Non-learned methods (identity, deconvolution with the known kernel) on the same inputs."""
    input:
        testset=f"{OUT}/data/testset_{{testset}}.h5",
    output:
        f"{OUT}/predictions/{{testset}}/{{classical}}/{{factor}}.h5",
    params:
        degrade=config["degrade"],
    log:
        f"{OUT}/logs/classical_{{testset}}_{{classical}}_{{factor}}.log",
    script:
        "../scripts/classical.py"
