rule train_continuous:
    """MSSR with the factor embedded like a timestep (1000 ln f), trained without the held-out factors."""
    input:
        train=rules.split.output.train,
        val=rules.split.output.val,
        store=ancient(rules.tracking_store.output[0]),  # a new tracking store retrains nothing
    output:
        model=f"{OUT}/models/mssr_continuous/model.safetensors",
        config=f"{OUT}/models/mssr_continuous/config.json",
        history=f"{OUT}/models/mssr_continuous/history.csv",
    params:
        # Only what training reads, so that editing the evaluation sections does not retrain it.
        cfg=TRAIN_CONFIG,
        factors=FACTORS,
        heldout=config["continuous"]["heldout"],
        epochs=config["continuous"]["epochs"],
    threads: JOB_THREADS
    resources:
        **gpu_resources(scale=4.0),
    log:
        f"{OUT}/logs/train_continuous.log",
    benchmark:
        f"{OUT}/benchmarks/train_continuous.tsv"
    conda:
        "../../envs/mssr.yaml"
    script:
        "../scripts/train_continuous.py"


rule heldout:
    """Factors the continuous model never saw: held out of Table 1 (vs MSSR, baselines, classical) and off-table pairs."""
    input:
        continuous=rules.train_continuous.output.model,
        mssr=f"{OUT}/models/mssr/model.safetensors",
        baselines=[f"{OUT}/models/baseline_{f}/model.safetensors" for f in config["continuous"]["heldout"]],
        testset=f"{OUT}/data/testset_blur.h5",
        test=rules.split.output.test,
    output:
        table=report(f"{OUT}/tables/heldout.csv", caption="../report/heldout.rst", category="Tables"),
        figure=report(f"{OUT}/figures/heldout.png", caption="../report/heldout.rst", category="Figures"),
    params:
        continuous=config["continuous"],
        sample=config["sample"],
        degrade=config["degrade"],
        metrics=config["metrics"],
        seed=config["seed"],
    threads: JOB_THREADS
    resources:
        **gpu_resources(),
    log:
        f"{OUT}/logs/heldout.log",
    benchmark:
        f"{OUT}/benchmarks/heldout.tsv"
    conda:
        "../../envs/mssr.yaml"
    script:
        "../scripts/heldout.py"


rule samplers:
    """Sampler options (few-step DDIM, DPM-Solver++, DDPM from the noised input) against the protocol."""
    input:
        model=f"{OUT}/models/mssr/model.safetensors",
        testset=f"{OUT}/data/testset_blur.h5",
    output:
        table=report(f"{OUT}/tables/samplers.csv", caption="../report/samplers.rst", category="Tables"),
        figure=report(f"{OUT}/figures/samplers.png", caption="../report/samplers.rst", category="Figures"),
    params:
        samplers=config["samplers"],
        sample=config["sample"],
        metrics=config["metrics"],
        factors=FACTORS,
        seed=config["seed"],
    threads: JOB_THREADS
    resources:
        **gpu_resources(),
    log:
        f"{OUT}/logs/samplers.log",
    benchmark:
        f"{OUT}/benchmarks/samplers.tsv"
    conda:
        "../../envs/mssr.yaml"
    script:
        "../scripts/samplers.py"
