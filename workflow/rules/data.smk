rule fetch:
    output:
        manifest=f"{OUT}/raw/manifest.csv",
    params:
        source=config["data"],
        seed=config["seed"],
    log:
        f"{OUT}/logs/fetch.log",
    benchmark:
        f"{OUT}/benchmarks/fetch.tsv"
    conda:
        "../../envs/mssr.yaml"
    script:
        "../scripts/fetch.py"


rule project:
    input:
        manifest=rules.fetch.output.manifest,
    output:
        planes=f"{OUT}/data/planes.h5",
    params:
        method=config["data"]["projection"],
    log:
        f"{OUT}/logs/project.log",
    conda:
        "../../envs/mssr.yaml"
    script:
        "../scripts/project.py"


rule preprocess:
    input:
        planes=rules.project.output.planes,
    output:
        samples=f"{OUT}/data/samples.h5",
    params:
        size=config["data"]["size"],
    log:
        f"{OUT}/logs/preprocess.log",
    conda:
        "../../envs/mssr.yaml"
    script:
        "../scripts/preprocess.py"


rule split:
    input:
        samples=rules.preprocess.output.samples,
    output:
        train=f"{OUT}/data/train.h5",
        val=f"{OUT}/data/val.h5",
        test=f"{OUT}/data/test.h5",
        assignment=f"{OUT}/data/split.json",
    params:
        split=config["data"]["split"],
    log:
        f"{OUT}/logs/split.log",
    conda:
        "../../envs/mssr.yaml"
    script:
        "../scripts/split.py"


rule testset:
    """Low-field inputs of the test set, computed once per (spectrum, factor) and shared by every method
    (``real``: the measured planes of peakipy's sdist, fetched into the cache, broadened physically)."""
    input:
        test=rules.split.output.test,
        assignment=rules.split.output.assignment,
        manifest=rules.fetch.output.manifest,
    output:
        f"{OUT}/data/testset_{{testset}}.h5",
    params:
        degrade=config["degrade"],
        data=config["data"],
        factors=FACTORS,
    log:
        f"{OUT}/logs/testset_{{testset}}.log",
    conda:
        "../../envs/mssr.yaml"
    script:
        "../scripts/testset.py"
