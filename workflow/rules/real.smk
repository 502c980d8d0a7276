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


rule network_weight_scan:
    """The native model's estimate with every network weight, scored on real validation planes no study scores."""
    input:
        model=REAL_MODEL_FILES,
    output:
        table=f"{OUT}/tables/network_weight.csv",
    params:
        real=config.get("real", {}),
        model_dir=lambda wildcards, input: str(Path(input.model[0]).parent),
    threads: JOB_THREADS
    resources:
        **gpu_resources(),
    log:
        f"{OUT}/logs/network_weight_scan.log",
    benchmark:
        f"{OUT}/benchmarks/network_weight_scan.tsv"
    conda:
        "../../envs/mssr.yaml"
    script:
        "../scripts/network_weight_scan.py"


rule network_weight:
    """The network weight by field ratio chosen from the scan (scripts/ship_model.sh ships it beside the model)."""
    input:
        model=REAL_MODEL_FILES,
        scan=rules.network_weight_scan.output.table,
    output:
        record=f"{OUT}/tables/network_weight.json",
    params:
        model_dir=lambda wildcards, input: str(Path(input.model[0]).parent),
    log:
        f"{OUT}/logs/network_weight.log",
    conda:
        "../../envs/mssr.yaml"
    script:
        "../scripts/network_weight.py"


rule native_samplers:
    """The native model's default sampler (and other variants) against the protocol, on validation patches."""
    input:
        model=f"{OUT}/models/mssr_native/model.safetensors",
        config=f"{OUT}/models/mssr_native/config.json",
        split=rules.split.output.assignment,
    output:
        table=f"{OUT}/tables/native_samplers.csv",
        summary=report(f"{OUT}/tables/native_samplers_summary.csv", caption="../report/native_samplers.rst",
                       category="Tables"),
    params:
        validate=(config.get("native") or {}).get("validate", {}),
        patches=(config.get("native") or {}).get("patches", {}),
    threads: JOB_THREADS
    resources:
        **gpu_resources(),
    log:
        f"{OUT}/logs/native_samplers.log",
    benchmark:
        f"{OUT}/benchmarks/native_samplers.tsv"
    conda:
        "../../envs/mssr.yaml"
    script:
        "../scripts/native_samplers.py"
