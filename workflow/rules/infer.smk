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


rule classical_params:
    """Parameters of the non-learned methods, chosen on validation pairs built like test set {testset} (MSE)."""
    input:
        val=f"{OUT}/data/val.h5",
        assignment=f"{OUT}/data/split.json",
        manifest=f"{OUT}/raw/manifest.csv",
    output:
        f"{OUT}/predictions/{{testset}}/classical_params.json",
    params:
        methods=CLASSICAL,
        degrade=config["degrade"],
        data=config["data"],
        factors=FACTORS,
        seed=config["seed"],
    log:
        f"{OUT}/logs/classical_params_{{testset}}.log",
    benchmark:
        f"{OUT}/benchmarks/classical_params_{{testset}}.tsv"
    conda:
        "../../envs/mssr.yaml"
    script:
        "../scripts/classical_params.py"


rule classical:
    """Non-learned methods (identity, Wiener, Richardson-Lucy, Lorentz-to-Gauss, peak fit) with each spectrum's
    kernel or added linewidth and the validation-chosen parameters, on the same inputs, all factors."""
    input:
        testset=f"{OUT}/data/testset_{{testset}}.h5",
        params=rules.classical_params.output[0],
    output:
        expand(f"{OUT}/predictions/{{{{testset}}}}/{{{{classical}}}}/{{factor}}.h5", factor=FACTORS),
    params:
        degrade=config["degrade"],
        factors=FACTORS,
    log:
        f"{OUT}/logs/classical_{{testset}}_{{classical}}.log",
    benchmark:
        f"{OUT}/benchmarks/classical_{{testset}}_{{classical}}.tsv"
    conda:
        "../../envs/mssr.yaml"
    script:
        "../scripts/classical.py"
