rule train_native_baseline:
    """A native baseline: the native model's network and budget, trained at one factor alone."""
    input:
        split=rules.split.output.assignment,
        store=ancient(rules.tracking_store.output[0]),  # a new tracking store retrains nothing
    output:
        model=f"{OUT}/models/native_baseline_{{factor}}/model.safetensors",
        config=f"{OUT}/models/native_baseline_{{factor}}/config.json",
        history=f"{OUT}/models/native_baseline_{{factor}}/history.csv",
    params:
        cfg=lambda wildcards: native_baseline_config(NATIVE_TRAIN_CONFIG, wildcards.factor),
        run_name=lambda wildcards: f"native_baseline_{wildcards.factor}",
    threads: JOB_THREADS
    resources:
        **gpu_resources(),
    log:
        f"{OUT}/logs/train_native_baseline_{{factor}}.log",
    benchmark:
        f"{OUT}/benchmarks/train_native_baseline_{{factor}}.tsv"
    conda:
        "../../envs/mssr.yaml"
    script:
        "../scripts/train_native.py"


rule native_evaluate:
    """One factor: the native MSSR, that factor's baseline and the classical methods on measured planes."""
    input:
        model=f"{OUT}/models/mssr_native/model.safetensors",
        baseline=f"{OUT}/models/native_baseline_{{factor}}/model.safetensors",
    output:
        table=f"{OUT}/tables/native/{{factor}}.csv",
        figure=f"{OUT}/figures/native/protein_L_{{factor}}.png",
    params:
        study=config.get("native_study", {}),
        cache=config["data"].get("real_testset", {}).get("cache"),
    threads: JOB_THREADS
    resources:
        **gpu_resources(),
    log:
        f"{OUT}/logs/native_evaluate_{{factor}}.log",
    benchmark:
        f"{OUT}/benchmarks/native_evaluate_{{factor}}.tsv"
    conda:
        "../../envs/mssr.yaml"
    script:
        "../scripts/native_evaluate.py"


rule native_tables:
    """Every factor's native rows in one table, and the per-factor means (Markdown)."""
    input:
        tables=expand(f"{OUT}/tables/native/{{factor}}.csv", factor=FACTORS),
    output:
        table=f"{OUT}/tables/native.csv",
        summary=report(f"{OUT}/tables/native_summary.md", caption="../report/native.rst", category="Tables"),
    log:
        f"{OUT}/logs/native_tables.log",
    conda:
        "../../envs/mssr.yaml"
    script:
        "../scripts/native_tables.py"
