rule tracking_store:
    """Create the MLflow store and experiment once, before training jobs fan out (first writers race)."""
    output:
        f"{OUT}/tracking/store.json",
    params:
        tracking=config["tracking"],
        results=lambda wildcards, output: str(Path(output[0]).parent.parent),
    log:
        f"{OUT}/logs/tracking_store.log",
    conda:
        "../../envs/mssr.yaml"
    script:
        "../scripts/tracking_store.py"


rule train_mssr:
    input:
        train=rules.split.output.train,
        val=rules.split.output.val,
        store=ancient(rules.tracking_store.output[0]),  # a new tracking store retrains nothing
    output:
        model=f"{OUT}/models/mssr/model.safetensors",
        config=f"{OUT}/models/mssr/config.json",
        history=f"{OUT}/models/mssr/history.csv",
    params:
        cfg=TRAIN_CONFIG,
        factors=FACTORS,
        factor=None,
    priority: 10  # the longest job: start it first
    threads: JOB_THREADS
    resources:
        **gpu_resources(scale=4.0),
    log:
        f"{OUT}/logs/train_mssr.log",
    benchmark:
        f"{OUT}/benchmarks/train_mssr.tsv"
    conda:
        "../../envs/mssr.yaml"
    script:
        "../scripts/train.py"


rule train_baseline:
    input:
        train=rules.split.output.train,
        val=rules.split.output.val,
        store=ancient(rules.tracking_store.output[0]),  # a new tracking store retrains nothing
    output:
        model=f"{OUT}/models/baseline_{{factor}}/model.safetensors",
        config=f"{OUT}/models/baseline_{{factor}}/config.json",
        history=f"{OUT}/models/baseline_{{factor}}/history.csv",
    params:
        cfg=BASELINE_TRAIN_CONFIG,
        factors=FACTORS,
        factor=lambda wildcards: wildcards.factor,
    threads: JOB_THREADS
    resources:
        **gpu_resources(),
    log:
        f"{OUT}/logs/train_baseline_{{factor}}.log",
    benchmark:
        f"{OUT}/benchmarks/train_baseline_{{factor}}.tsv"
    conda:
        "../../envs/mssr.yaml"
    script:
        "../scripts/train.py"


rule train_native:
    """The native-resolution model: patches on the working grid from the training proteins."""
    input:
        split=rules.split.output.assignment,
        store=ancient(rules.tracking_store.output[0]),  # a new tracking store retrains nothing
    output:
        model=f"{OUT}/models/mssr_native/model.safetensors",
        config=f"{OUT}/models/mssr_native/config.json",
        history=f"{OUT}/models/mssr_native/history.csv",
    params:
        cfg=NATIVE_TRAIN_CONFIG,
    priority: 10
    threads: JOB_THREADS
    resources:
        **gpu_resources(scale=4.0),
    log:
        f"{OUT}/logs/train_native.log",
    benchmark:
        f"{OUT}/benchmarks/train_native.tsv"
    conda:
        "../../envs/mssr.yaml"
    script:
        "../scripts/train_native.py"
